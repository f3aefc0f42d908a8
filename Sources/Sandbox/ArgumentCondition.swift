/// A check on one argument of a system call, on its low 32 bits (the kernel
/// reads `ioctl` requests, `socket` domains, `prctl` options and protection
/// flags as `int`s).
public enum ArgumentCondition: Sendable, Equatable {
    /// Argument `index` is one of `values`.
    case oneOf(index: Int, values: [UInt32])
    /// Argument `index` has none of the bits of `mask` set (`PROT_EXEC` off).
    case noBits(index: Int, mask: UInt32)
    /// Argument `index` has all the bits of `mask` set (`CLONE_THREAD` on).
    case allBits(index: Int, mask: UInt32)
}
