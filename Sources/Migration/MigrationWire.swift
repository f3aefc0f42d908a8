/// The migration stream's framing: each side first sends a stream header,
/// then messages, each a frame header and a payload.
///
/// ```
/// stream header (16 bytes)        frame header (12 bytes), then the payload
/// offset size field               offset size field
///      0    8 magic "SWVMMIGR"         0    4 message type, little-endian
///      8    4 protocol version         4    4 payload length
///     12    4 reserved, zero           8    4 CRC-32 of bytes 0..<8 and the payload
/// ```
///
/// Every integer is little-endian. The payload of each type is documented at
/// `MigrationMessage`; each type has its own largest length (`maximumPayload`),
/// checked before a byte of the payload is read.
public enum MigrationWire {
    /// The first bytes of a stream.
    public static let magic: [UInt8] = Array("SWVMMIGR".utf8)
    /// The protocol version this build speaks; a peer of another version is refused.
    public static let version: UInt32 = 1
    /// The size of the stream header.
    public static let streamHeaderSize = 16
    /// The size of a frame header.
    public static let frameHeaderSize = 12
    /// The guest page the stream moves.
    public static let pageSize = 4096
    /// The most entries one page batch has.
    public static let maximumBatchEntries = 1024
    /// The most pages of data one page batch carries (1 MiB).
    public static let maximumBatchDataPages = 256
    /// The largest machine state (the snapshot state file); a 255-vCPU state is a few MiB.
    public static let maximumStateBytes = 64 << 20
    /// The largest hello and error payloads.
    public static let maximumHelloBytes = 64 << 10
    public static let maximumErrorBytes = 4 << 10

    /// The stream header for `version`.
    public static func streamHeader(version: UInt32 = version) -> [UInt8] {
        var bytes = magic
        WireBytes.append(version, to: &bytes)
        WireBytes.append(UInt32(0), to: &bytes)
        return bytes
    }

    /// The version a stream header announces, after checking its magic.
    public static func version(ofStreamHeader bytes: [UInt8]) throws(MigrationWireError) -> UInt32 {
        guard bytes.count == streamHeaderSize else { throw .truncated(expected: streamHeaderSize, found: bytes.count) }
        guard Array(bytes[0..<8]) == magic else { throw .badMagic }
        return WireBytes.integer(bytes, at: 8)
    }
}
