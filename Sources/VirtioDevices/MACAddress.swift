/// An Ethernet address, as virtio-net's configuration space carries it.
public struct MACAddress: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The six bytes, first on the wire first.
    public let bytes: [UInt8]

    /// An address from six bytes; `nil` for another count.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 6 else { return nil }
        self.bytes = bytes
    }

    /// Parses `52:54:00:12:34:56` (colons or dashes, hex digits in either
    /// case); `nil` for anything else, and for a multicast address, which
    /// no network card may have.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let fields = parts.count == 6 ? parts : text.split(separator: "-", omittingEmptySubsequences: false)
        guard fields.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for field in fields {
            guard field.count == 2, let byte = UInt8(field, radix: 16) else { return nil }
            bytes.append(byte)
        }
        guard bytes[0] & 1 == 0 else { return nil }
        self.bytes = bytes
    }

    /// A locally administered unicast address derived from `name` (a tap
    /// device's), the same for the same name, so that a guest keeps its
    /// address (and its DHCP lease) from one run to the next.
    public init(derivedFrom name: String) {
        // FNV-1a: small, stable across runs and platforms (unlike Hasher).
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0100_0000_01b3
        }
        var bytes = (0..<6).map { UInt8(truncatingIfNeeded: hash >> (8 * UInt64($0))) }
        // Locally administered (bit 1), unicast (bit 0 clear).
        bytes[0] = (bytes[0] & 0xfc) | 0x02
        self.bytes = bytes
    }

    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }
}
