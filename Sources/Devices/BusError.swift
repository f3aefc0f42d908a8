import VMCore

/// Why a device could not be registered on a `PortIOBus` or an `MMIOBus`.
///
/// Addresses are widened to `UInt64` so that both buses share one error type;
/// on the port bus they are port numbers.
public enum BusError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A range of no addresses was requested at `base`.
    case zeroLength(base: UInt64)
    /// `base + length` runs past `lastAddress`, the end of the address space
    /// (0xffff for ports, 2^64 - 1 for MMIO).
    case wrapsAround(base: UInt64, length: UInt64, lastAddress: UInt64)
    /// The `requested` range shares at least one address with an `existing` one.
    case overlap(requested: ClosedRange<UInt64>, existing: ClosedRange<UInt64>)

    public var description: String {
        switch self {
        case .zeroLength(let base):
            return "cannot register a zero-length range at \(hex(base))"
        case .wrapsAround(let base, let length, let lastAddress):
            return "range at \(hex(base)) of length \(hex(length)) runs past the end of the address space"
                + " (\(hex(lastAddress)))"
        case .overlap(let requested, let existing):
            return "range \(Self.format(requested)) overlaps the registered range \(Self.format(existing))"
        }
    }

    private static func format(_ range: ClosedRange<UInt64>) -> String {
        "\(hex(range.lowerBound))...\(hex(range.upperBound))"
    }
}
