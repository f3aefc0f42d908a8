/// Why the target could not do what the debugger asked; the engine answers `E` and a number.
public enum DebugTargetError: Error, Hashable, Sendable {
    /// Guest memory at this address is not mapped (or not RAM).
    case unmappedAddress(UInt64)
    /// The register or state could not be read or written (the host refused it).
    case unavailable(String)
    /// The request is not something the CPU can do (an unaligned watchpoint, say).
    case unsupported(String)

    /// The errno-style number of the `E` reply.
    var code: UInt8 {
        switch self {
        case .unmappedAddress: return 14  // EFAULT
        case .unavailable: return 5  // EIO
        case .unsupported: return 22  // EINVAL
        }
    }
}
