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
/// The timer is a thread of its own, not a queue of a shared pool: when every
/// pool thread is busy running guests (parallel tests on two cores), a pooled
/// timer would fire late or never. One thread per deadline, nothing per exit.
final class RunDeadline {
    /// What the timer thread and the owner share, under `mutex`.
    private final class Watch {
        let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        var armed = true
        var fired = false
        let deadline: timespec
        let kicker: VCPUKicker
        let target: pthread_t

        init(deadline: timespec, kicker: VCPUKicker, target: pthread_t) {
            self.deadline = deadline
            self.kicker = kicker
            self.target = target
            pthread_mutex_init(mutex, nil)
            var attributes = pthread_condattr_t()
            pthread_condattr_init(&attributes)
            pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
            pthread_cond_init(condition, &attributes)
            pthread_condattr_destroy(&attributes)
        }

        deinit {
            pthread_cond_destroy(condition)
            pthread_mutex_destroy(mutex)
            condition.deallocate()
            mutex.deallocate()
        }

        /// The timer thread's body.
        func wait() {
            pthread_mutex_lock(mutex)
            var deadline = self.deadline
            while armed, pthread_cond_timedwait(condition, mutex, &deadline) != ETIMEDOUT {}
            if armed {
                // Under the lock, so `disarm()` cannot return (and the target
                // thread move on or exit) between this check and the signal.
                fired = true
                kicker.requestExit()
                pthread_kill(target, VCPUSignal.number)
            }
            pthread_mutex_unlock(mutex)
        }
    }

    private let watch: Watch
    private var thread = pthread_t()
    private var started = false
    private var previousMask = sigset_t()

    /// The timer thread's stack.
    static let stackSize = 256 << 10

    init(after timeout: Duration, kicker: VCPUKicker) {
        VCPUSignal.install()
        // Unblocked for the deadline's lifetime, then the old mask comes back.
        previousMask = VCPUSignal.unblockOnCurrentThread()

        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let seconds = max(0, timeout.components.seconds)
        let nanoseconds = Int(max(0, timeout.components.attoseconds) / 1_000_000_000)
        var deadline = now
        deadline.tv_sec += Int(min(seconds, Int64(Int32.max)))
        deadline.tv_nsec += nanoseconds
        if deadline.tv_nsec >= 1_000_000_000 {
            deadline.tv_sec += 1
            deadline.tv_nsec -= 1_000_000_000
        }
        watch = Watch(deadline: deadline, kicker: kicker, target: pthread_self())
        let context = Unmanaged.passRetained(watch).toOpaque()
        // The timer only waits and signals: a small stack, rather than the
        // default 8 MiB that glibc keeps cached after the thread ends.
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, Self.stackSize)
        started =
            pthread_create(
                &thread, &attributes,
                { context in
                    guard let context else { return nil }
                    Unmanaged<Watch>.fromOpaque(context).takeRetainedValue().wait()
                    return nil
                }, context) == 0
        if !started { Unmanaged<Watch>.fromOpaque(context).release() }
    }

    /// Whether the deadline has passed and the vCPU was kicked.
    var hasFired: Bool {
        pthread_mutex_lock(watch.mutex)
        defer { pthread_mutex_unlock(watch.mutex) }
        return watch.fired
    }

    /// Stops the timer and waits for its thread; returns whether the deadline
    /// had already passed. No kick can arrive after this returns.
    func disarm() -> Bool {
        pthread_mutex_lock(watch.mutex)
        watch.armed = false
        pthread_cond_signal(watch.condition)
        pthread_mutex_unlock(watch.mutex)
        if started { pthread_join(thread, nil) }
        // A kick that is still pending (sent but not yet delivered) is taken
        // now, by the no-op handler, before the thread's old mask returns.
        pthread_sigmask(SIG_SETMASK, &previousMask, nil)
        return watch.fired
    }
}
