import HostSupport
import KVM

#if canImport(Glibc)
    import Glibc
#endif

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
