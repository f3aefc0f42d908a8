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
