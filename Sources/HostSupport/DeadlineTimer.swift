/// Runs an action once, on a thread of its own, when a time has passed,
/// unless `disarm()` comes first.
///
/// One thread per timer, not a timer queue on a shared pool: when vCPU
/// threads have taken every thread of a pool (parallel tests on two cores),
/// a pooled timer fires late or never. The thread only waits: its stack is
/// small, and it neither allocates nor frees (see `HostThread.spawn`).
public final class DeadlineTimer: Sendable {
    /// The timer thread's default stack: it waits and runs a short action,
    /// and a small stack is not kept cached as glibc keeps 8 MiB ones.
    public static let defaultStackSize = 256 << 10

    /// What the timer thread and the owner share, under `condition`'s lock.
    private final class State: @unchecked Sendable {
        let condition = MonotonicCondition()
        var armed = true
        var fired = false
    }

    private let state: State
    private let thread: JoinHandle

    /// Starts the timer: `action` runs on the timer thread once `delay` has
    /// passed, unless the timer is disarmed first.
    ///
    /// - Parameters:
    ///   - name: the timer thread's name.
    ///   - stackSize: the timer thread's stack; enough for `action`.
    ///   - action: must not call `disarm()` or `hasFired` expecting to wait:
    ///     on the timer thread they do not wait for it.
    public init(
        name: String = "deadline", after delay: Duration, stackSize: Int? = DeadlineTimer.defaultStackSize,
        action: @escaping @Sendable () -> Void
    ) throws(HostThreadError) {
        let state = State()
        let deadline = MonotonicDeadline.after(delay)
        self.state = state
        thread = try HostThread.spawn(name: name, stackSize: stackSize) {
            let fire = state.condition.withLock {
                while state.armed, state.condition.wait(until: deadline) {}
                guard state.armed else { return false }
                state.armed = false
                state.fired = true
                return true
            }
            if fire { action() }
        }
    }

    deinit { disarm() }

    /// Whether the time has passed and `action` has been started (it may
    /// still be running; `disarm()` waits for it).
    public var hasFired: Bool { state.condition.withLock { state.fired } }

    /// Stops the timer, and waits for its thread to end (so for `action` to
    /// return, if it had started); returns whether it had fired. After it
    /// returns, `action` does not run. Safe to call more than once.
    @discardableResult
    public func disarm() -> Bool {
        state.condition.withLock {
            state.armed = false
            state.condition.signal()
        }
        thread.join()
        return hasFired
    }
}
