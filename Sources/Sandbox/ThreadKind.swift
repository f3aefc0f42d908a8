/// What a thread of swiftvmm does, which decides the system calls its seccomp
/// filter allows (`SandboxPolicy`).
public enum ThreadKind: String, CaseIterable, Sendable {
    /// The process filter the main thread installs before any other thread is
    /// started: the union of every kind below plus what building a machine
    /// needs. Every later thread inherits it (filters stack) and narrows it.
    case process
    /// A vCPU thread (`vcpu N`): `KVM_RUN` and the exits it handles.
    case vcpu
    /// The virtio I/O event loop (`virtio-io`): queue notifications, block and network back ends.
    case io
    /// A timer thread (`vcpu-deadline`, `halt probe`): sleeps, then kicks a vCPU.
    case timer
    /// The GDB stub (`gdb stub`): its accepted connection and the vCPUs' debug state.
    case gdb
    /// The console reader (`console-input`): stdin, the terminal, Ctrl-A commands (a snapshot among them).
    case console
    /// The API server's event loop (SwiftNIO): its Unix socket's connections.
    case api
    /// Live migration's thread: its socket and the VM's dirty log and state.
    case migration

    /// The kind of a thread `HostThread.spawn` named `name`, or `nil` for a
    /// thread that keeps the process filter it inherited.
    public init?(threadName name: String) {
        switch name {
        case _ where name.hasPrefix("vcpu-deadline"), "halt probe": self = .timer
        case _ where name.hasPrefix("vcpu "): self = .vcpu
        case "virtio-io": self = .io
        case "gdb stub": self = .gdb
        case "console-input": self = .console
        case _ where name.hasPrefix("migration"): self = .migration
        default: return nil
        }
    }

    /// Whether the kind's threads never need a capability: the vCPUs, the
    /// I/O loop, timers and the GDB stub only use descriptors already open.
    /// (The API's, the console's and migration's may build or write a machine.)
    public var neverNeedsCapabilities: Bool { [.vcpu, .io, .timer, .gdb].contains(self) }
}
