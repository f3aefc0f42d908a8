/// A guest-physical address.
///
/// A distinct type so that a guest address can never be confused with a host
/// pointer, an offset or a length.
public struct GuestAddress: RawRepresentable, Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: UInt64

    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }
    @inlinable public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    @inlinable public static func < (lhs: GuestAddress, rhs: GuestAddress) -> Bool {
        lhs.rawValue < rhs.rawValue
    }

    /// The address `offset` bytes further on, or `nil` if that would wrap past 2^64.
    @inlinable public func adding(_ offset: UInt64) -> GuestAddress? {
        let (sum, overflow) = rawValue.addingReportingOverflow(offset)
        return overflow ? nil : GuestAddress(sum)
    }

    public var description: String { hex(rawValue) }
}

/// `0x`-prefixed lower-case hexadecimal, the way addresses appear in every
/// message swiftvmm prints.
public func hex<T: BinaryInteger>(_ value: T) -> String {
    "0x" + String(value, radix: 16)
}
