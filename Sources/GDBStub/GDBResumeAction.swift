/// What a `c`, `s` or `vCont` action asks of a thread.
public enum GDBResumeAction: Hashable, Sendable {
    /// Run until something stops the target (`c`, or `C` whose signal a VMM has no use for).
    case `continue`
    /// Execute one instruction (`s`, or `S`).
    case step
}

extension GDBResumeAction {
    /// One `vCont` action: what to do, and for which thread (`nil`: every thread no other action names).
    public struct PerThread: Hashable, Sendable {
        public var action: GDBResumeAction
        public var thread: GDBThreadID?
        public init(_ action: GDBResumeAction, thread: GDBThreadID?) {
            self.action = action
            self.thread = thread
        }
    }
}
