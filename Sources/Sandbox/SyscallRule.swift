/// One system call a filter allows, with the reason the README gives, and an
/// optional check of its arguments.
public struct SyscallRule: Sendable, Equatable {
    /// The x86-64 name, as in `<asm/unistd_64.h>` (`ioctl`, `mmap`).
    public var name: String
    public var condition: ArgumentCondition?
    /// When set, the call fails with this errno instead of being allowed
    /// (`clone3` gets `ENOSYS`, so glibc falls back to `clone`, whose flags a filter can read).
    public var errno: Int32?

    public init(_ name: String, _ condition: ArgumentCondition? = nil, errno: Int32? = nil) {
        self.name = name
        self.condition = condition
        self.errno = errno
    }
}
