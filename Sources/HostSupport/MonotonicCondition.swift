#if canImport(Glibc)
    import Glibc
#endif

/// A mutex and a condition variable that waits on `CLOCK_MONOTONIC`, for
/// threads that hand state to each other: lock, change or check the state,
/// then `signal`/`broadcast`, or `wait` until another thread has.
///
/// Built on pthread primitives rather than `Synchronization.Mutex`: a
/// contended `Mutex` on Linux waits on a raw futex in the uninstrumented
/// runtime, so ThreadSanitizer never sees the hand-over (see VMCore's
/// ThreadLock). The state it guards is the caller's; keep it in a class the
/// caller declares `@unchecked Sendable`, and touch it only under the lock.
public final class MonotonicCondition: @unchecked Sendable {
    // Unchecked: the pthread objects are made for use from many threads, and
    // live behind pointers because they must not move.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
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

    /// Takes the mutex, waiting for it. Prefer `withLock`.
    public func lock() { pthread_mutex_lock(mutex) }

    /// Gives the mutex back; the caller must hold it.
    public func unlock() { pthread_mutex_unlock(mutex) }

    /// Runs `body` with the mutex held; `body` may `wait`.
    public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Gives the mutex up until woken by `signal`/`broadcast` (or spuriously)
    /// or until `deadline` passes, then takes it again. The caller must hold
    /// the mutex, and check its condition again in a loop.
    ///
    /// - Returns: false if `deadline` has passed, true otherwise.
    ///
    /// The corresponding C function is `pthread_cond_timedwait`.
    @discardableResult
    public func wait(until deadline: MonotonicDeadline? = nil) -> Bool {
        guard let deadline else {
            pthread_cond_wait(condition, mutex)
            return true
        }
        var time = deadline.timespecValue
        return pthread_cond_timedwait(condition, mutex, &time) != ETIMEDOUT
    }

    /// Wakes one waiting thread. Call with the mutex held, after changing the state.
    public func signal() { pthread_cond_signal(condition) }

    /// Wakes every waiting thread. Call with the mutex held, after changing the state.
    public func broadcast() { pthread_cond_broadcast(condition) }
}
