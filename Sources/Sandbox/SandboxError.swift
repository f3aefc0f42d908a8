/// Why the sandbox could not be set up.
public enum SandboxError: Error, Equatable, CustomStringConvertible {
    /// A policy names a system call the x86-64 table does not know.
    case unknownSystemCall(String)
    /// A filter program is longer than BPF allows (4096 instructions) or a jump does not fit.
    case programTooLong(ThreadKind, instructions: Int)
    /// `prctl`, `seccomp`, `sigaction`, `setrlimit`, `setuid`... failed with `errno`.
    case systemCall(String, errno: Int32)
    /// After dropping privileges, a thread still has capabilities (`CapEff` in /proc/self/status, or a `Cap*` line of a thread's).
    case capabilitiesRemain(String)
    /// A path a Landlock rule names cannot be opened (or the rule not added): `errno`.
    case landlockPath(String, errno: Int32)

    public var description: String {
        switch self {
        case .unknownSystemCall(let name): return "seccomp policy: unknown system call '\(name)'"
        case .programTooLong(let kind, let count):
            return "seccomp filter for the \(kind.rawValue) thread: \(count) instructions is too long"
        case .systemCall(let name, let errno): return "sandbox: \(name) failed (errno \(errno))"
        case .capabilitiesRemain(let value): return "sandbox: capabilities remain after dropping privileges (\(value))"
        case .landlockPath(let path, let errno): return "landlock: cannot grant access to \(path) (errno \(errno))"
        }
    }
}
