import HostSupport
import KVM

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

    /// Unblocks the signal on the calling thread and returns the previous mask.
    /// Threads of Dispatch's pool (where Swift concurrency, and so most tests,
    /// run) block signals, and a blocked signal never interrupts KVM_RUN.
    @discardableResult
    static func unblockOnCurrentThread() -> sigset_t {
        var unblock = sigset_t()
        var previous = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, number)
        pthread_sigmask(SIG_UNBLOCK, &unblock, &previous)
        return previous
    }
}

/// A deadline for code that runs a vCPU on the calling thread: when it passes,
/// the vCPU is kicked out of `KVM_RUN` (its next `run()` returns `.interrupted`),
/// so a guest that spins forever cannot hang its caller.
///
/// A `DeadlineTimer`: a thread of its own, not a queue of a shared pool, so
/// it fires on time even when vCPU threads hold every pool thread. One
/// thread per deadline, nothing per exit.
final class RunDeadline {
    /// Nil if no timer thread could be started: the run then has no deadline
    /// (as a timer that never fires), rather than failing.
    private let timer: DeadlineTimer?
    private var previousMask = sigset_t()

    init(after timeout: Duration, kicker: VCPUKicker) {
        VCPUSignal.install()
        // Unblocked for the deadline's lifetime, then the old mask comes back.
        previousMask = VCPUSignal.unblockOnCurrentThread()
        let target = pthread_self()
        timer = try? DeadlineTimer(name: "vcpu-deadline", after: timeout) {
            kicker.requestExit()
            pthread_kill(target, VCPUSignal.number)
        }
    }

    /// Whether the deadline has passed and the vCPU was kicked.
    var hasFired: Bool { timer?.hasFired ?? false }

    /// Stops the timer and waits for its thread; returns whether the deadline
    /// had already passed. No kick can arrive after this returns.
    func disarm() -> Bool {
        let fired = timer?.disarm() ?? false
        // A kick that is still pending (sent but not yet delivered) is taken
        // now, by the no-op handler, before the thread's old mask returns.
        pthread_sigmask(SIG_SETMASK, &previousMask, nil)
        return fired
    }
}
