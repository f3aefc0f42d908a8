import KVM
import Synchronization
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// What other threads may do to a running machine: kick its vCPU out of
/// `KVM_RUN`, and ask it to stop.
final class MachineControl: Sendable {
    /// The thread running the vCPU, while `run()` is on it.
    private let vcpuThread = ThreadLock<pthread_t?>(nil)
    let stopRequested = Atomic<Bool>(false)

    /// Makes `thread` (the calling thread) the one kicks signal, unless one
    /// already is; returns whether it did (and so must `detach()`).
    @discardableResult
    func attach(thread: pthread_t) -> Bool {
        VCPUSignal.install()
        VCPUSignal.unblockOnCurrentThread()
        return vcpuThread.withLock { current in
            guard current == nil else { return false }
            current = thread
            return true
        }
    }

    func detach() { vcpuThread.withLock { $0 = nil } }

    /// Sets `immediate_exit` and signals the vCPU thread if one is running it.
    /// Under the lock, so the thread cannot leave `run()` (and exit) in between.
    func kick(_ kicker: VCPUKicker) {
        vcpuThread.withLock { thread in
            kicker.requestExit()
            if let thread { pthread_kill(thread, VCPUSignal.number) }
        }
    }
}

/// Calls `action` every `interval` on a thread of its own until stopped.
final class PeriodicKick {
    private final class Shared: Sendable {
        let running = ThreadLock(true)
    }

    private let shared = Shared()
    private var thread = pthread_t()
    private var started = false

    init(every interval: Duration, _ action: @escaping @Sendable () -> Void) {
        let shared = self.shared
        let microseconds = UInt32(clamping: interval.components.seconds * 1_000_000 + interval.components.attoseconds / 1_000_000_000_000)
        let body: @Sendable () -> Void = {
            while shared.running.withLock({ $0 }) {
                usleep(microseconds)
                if shared.running.withLock({ $0 }) { action() }
            }
        }
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        started =
            pthread_create(
                &thread, nil,
                { context in
                    guard let context else { return nil }
                    Unmanaged<Box>.fromOpaque(context).takeRetainedValue().body()
                    return nil
                }, context) == 0
        if !started { Unmanaged<Box>.fromOpaque(context).release() }
    }

    /// Stops the thread and waits for it (at most one interval).
    func stop() {
        shared.running.withLock { $0 = false }
        if started { pthread_join(thread, nil) }
        started = false
    }

    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
}

/// Kicks or stops a running `Machine` from any thread.
public struct MachineRemote: Sendable {
    let control: MachineControl
    let kicker: VCPUKicker

    /// Makes the vCPU leave `KVM_RUN` soon; the machine then drains console
    /// input, flushes output and runs its `onKick`.
    public func kick() { control.kick(kicker) }

    /// Makes `Machine.run()` return `.stopRequested`.
    public func requestStop() {
        control.stopRequested.store(true, ordering: .sequentiallyConsistent)
        control.kick(kicker)
    }
}
