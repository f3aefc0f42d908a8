/// What a system call outside a thread's filter does (`--seccomp`).
public enum SeccompMode: String, CaseIterable, Sendable {
    /// The process dies with `SIGSYS`, after a message naming the thread and the call.
    case enforce
    /// The message is written and the call is made anyway (to find what a filter lacks).
    case log
    /// No filters at all.
    case off
}
