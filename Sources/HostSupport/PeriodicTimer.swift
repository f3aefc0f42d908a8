/// Runs an action every interval on a thread of its own, until `stop()`.
///
/// The first call comes one interval after the start, or, with `startingAt`,
/// that long after it, each gap then twice the one before until it reaches
/// the interval (a poll that answers early in a short life and costs little
/// in a long one). A call that runs long
/// delays the next one rather than causing a burst of catch-up calls.
/// `stop()` wakes the thread at once instead of letting it sleep out its
/// interval.
public final class PeriodicTimer: Sendable {
    /// The timer thread's default stack, as `DeadlineTimer`'s.
    public static let defaultStackSize = DeadlineTimer.defaultStackSize

    private final class State: @unchecked Sendable {
        let condition = MonotonicCondition()
        var running = true
    }

    private let state: State
    private let thread: JoinHandle

    /// Starts the timer.
    ///
    /// - Parameters:
    ///   - interval: the time between calls; at least a microsecond.
    ///   - first: the first gap, doubled after each call until it is `interval`;
    ///     nil: every gap is `interval`.
    ///   - action: runs on the timer thread; it may call `stop()`.
    public init(
        name: String = "periodic", every interval: Duration, startingAt first: Duration? = nil,
        stackSize: Int? = PeriodicTimer.defaultStackSize, action: @escaping @Sendable () -> Void
    ) throws(HostThreadError) {
        let state = State()
        let interval = max(interval, .microseconds(1))
        let firstGap = min(max(first ?? interval, .microseconds(1)), interval)
        self.state = state
        thread = try HostThread.spawn(name: name, stackSize: stackSize) {
            var gap = firstGap
            var next = MonotonicDeadline.after(gap)
            state.condition.lock()
            while state.running {
                guard !state.condition.wait(until: next) else { continue }
                state.condition.unlock()
                action()
                let now = MonotonicDeadline.now
                gap = min(gap * 2, interval)
                next = next.advanced(by: gap)
                // Late (a slow action, a busy host): start counting again
                // from now rather than call back to back.
                if next <= now { next = now.advanced(by: gap) }
                state.condition.lock()
            }
            state.condition.unlock()
        }
    }

    deinit { stop() }

    /// Stops the timer: wakes its thread and waits for it to end (so for a
    /// call in progress to return). No call starts after this returns. Safe
    /// to call more than once, and from `action` (which then does not wait).
    public func stop() {
        state.condition.withLock {
            state.running = false
            state.condition.signal()
        }
        thread.join()
    }
}
