import Dispatch
import KVM
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The signal that pulls a vCPU thread out of `KVM_RUN`.
///
/// A real-time signal (SIGRTMIN + 1, as Firecracker does) with a handler that
/// does nothing and no `SA_RESTART`, so the only effect of its delivery is that
/// `KVM_RUN` returns `EINTR`.
public enum VCPUSignal {
    public static let number: Int32 = __libc_current_sigrtmin() + 1

    private static let installation: Void = {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(number, &action, nil)
    }()

    /// Installs the handler, once per process.
    public static func install() { _ = installation }
}

/// A deadline for code that runs a vCPU on the calling thread: when it passes,
/// the vCPU is kicked out of `KVM_RUN` (its next `run()` returns `.interrupted`),
/// so a guest that spins forever cannot hang its caller.
///
/// Costs one timer for the whole deadline, nothing per exit.
final class RunDeadline {
    private final class State: Sendable {
        struct Flags {
            var armed = true
            var fired = false
        }
        let flags = Mutex(Flags())
    }

    private let state = State()
    private let item: DispatchWorkItem

    init(after timeout: Duration, kicker: VCPUKicker) {
        VCPUSignal.install()
        let thread = pthread_self()
        let state = self.state
        item = DispatchWorkItem { [state] in
            state.flags.withLock { s in
                // Under the lock, so `disarm()` cannot return (and the thread
                // move on or exit) between the check and the signal.
                guard s.armed else { return }
                s.fired = true
                kicker.requestExit()
                pthread_kill(thread, VCPUSignal.number)
            }
        }
        let nanoseconds = max(0, timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(min(nanoseconds, Int64(Int.max)))), execute: item)
    }

    /// Whether the deadline has passed and the vCPU was kicked.
    var hasFired: Bool { state.flags.withLock { $0.fired } }

    /// Stops the timer; returns whether the deadline had already passed.
    func disarm() -> Bool {
        item.cancel()
        return state.flags.withLock { s in
            s.armed = false
            return s.fired
        }
    }
}
