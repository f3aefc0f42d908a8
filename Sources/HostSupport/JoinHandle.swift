import CHostSupport
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A thread started by `HostThread.spawn`: wait for it to end with `join()`,
/// or signal it through `pthread`.
///
/// Dropping the last reference joins the thread (it waits for `body` to
/// return), unless that happens on the thread itself: then the thread is
/// detached and cleans up after itself when `body` returns.
public final class JoinHandle: Sendable {
    /// What the new thread runs, owned by the handle until it is joined, so
    /// that it is freed on the joining thread, never on the new one. Released
    /// at the join, so that a body that captures the handle's owner (a runner
    /// that keeps its own thread's handle) makes no lasting cycle.
    final class Start: Sendable {
        let name: [CChar]
        let body: @Sendable () -> Void
        /// Set on the thread itself when it is detached (see `join()`); it
        /// then holds an extra reference to this object, which it releases.
        let detached = Atomic<Bool>(false)

        init(name: [CChar], body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }

        /// The new thread's whole life.
        func run() {
            _ = name.withUnsafeBufferPointer { buffer in buffer.baseAddress.map { pthread_setname_np(pthread_self(), $0) } }
            if let hook = HostThread.startHook { _ = name.withUnsafeBufferPointer { $0.baseAddress.map { hook(String(cString: $0)) } } }
            body()
            if detached.load(ordering: .acquiring) {
                Unmanaged.passUnretained(self).release()
            }
        }
    }

    private enum State { case running, joining, joined, detached }

    /// The thread, for `pthread_kill` and the like. Valid until `join()` returns.
    public let pthread: pthread_t
    /// The `Start`, until the join releases it. Guarded by `state`'s mutex,
    /// behind a pointer like `current`.
    private nonisolated(unsafe) let start = UnsafeMutablePointer<Start?>.allocate(capacity: 1)
    private let state = MonotonicCondition()
    // Guarded by `state`'s mutex; behind a pointer for the reason ThreadLock gives
    // (ThreadSanitizer would take Swift's exclusivity tracking for a race).
    private nonisolated(unsafe) let current = UnsafeMutablePointer<State>.allocate(capacity: 1)

    init(thread: pthread_t, start: Start) {
        pthread = thread
        self.start.initialize(to: start)
        current.initialize(to: .running)
    }

    deinit {
        join()
        current.deinitialize(count: 1)
        current.deallocate()
        start.deinitialize(count: 1)
        start.deallocate()
    }

    /// Whether the calling thread is this thread.
    public var isCurrent: Bool { pthread_equal(pthread_self(), pthread) != 0 }

    /// Waits until the thread's `body` has returned and the thread has ended.
    ///
    /// Idempotent, and safe from any number of threads at once (all return
    /// once the thread has ended). Called on the thread itself, it cannot
    /// wait: if no other thread is joining already, it detaches the thread
    /// (which then ends on its own) and returns at once, as later calls from
    /// other threads then do.
    ///
    /// The corresponding C function is `pthread_join`.
    public func join() {
        if isCurrent {
            state.withLock {
                guard current.pointee == .running else { return }
                // The thread keeps `start` alive until `body` returns, then
                // releases it (see Start.run).
                guard let start = start.pointee else { return }
                _ = Unmanaged.passRetained(start)
                start.detached.store(true, ordering: .releasing)
                pthread_detach(pthread)
                current.pointee = .detached
            }
            return
        }
        let mustJoin = state.withLock {
            while current.pointee == .joining { state.wait() }
            guard current.pointee == .running else { return false }
            current.pointee = .joining
            return true
        }
        guard mustJoin else { return }
        // Not under the lock: the thread may call join() itself meanwhile.
        pthread_join(pthread, nil)
        state.withLock {
            current.pointee = .joined
            start.pointee = nil
            state.broadcast()
        }
    }
}
