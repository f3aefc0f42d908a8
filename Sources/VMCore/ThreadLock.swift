#if canImport(Glibc)
    import Glibc
#endif

/// A value shared between threads, guarded by a `pthread_mutex_t`.
///
/// The standard library's `Mutex` would do, but on Linux a contended `Mutex`
/// waits and wakes in the (uninstrumented) runtime through a raw futex, so
/// ThreadSanitizer never sees the hand-over and reports the guarded accesses
/// as races. The VMM runs its test suite under ThreadSanitizer, so state that
/// vCPU, console and timer threads share goes through this instead.
public final class ThreadLock<Value>: @unchecked Sendable {
    // Unchecked: `value` is only touched with `mutex` held. It lives behind a
    // pointer rather than in a stored property so that Swift's exclusivity
    // checks (which ThreadSanitizer reports as access races) do not stand in
    // for the lock, which already serialises every access.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let value = UnsafeMutablePointer<Value>.allocate(capacity: 1)

    public init(_ value: Value) {
        self.value.initialize(to: value)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Runs `body` with exclusive access to the value.
    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }
}
