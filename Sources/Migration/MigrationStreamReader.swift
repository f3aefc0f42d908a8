import VMCore

/// Reads a migration stream: the stream header, then one checked message at
/// a time. Every length is checked against its type's limit before the
/// payload is read, and the payload is read in pieces as it arrives, so a
/// stream that announces more than it sends costs no more memory than it sent.
public struct MigrationStreamReader<Source: MigrationByteSource> {
    public var source: Source
    /// The largest piece read at once.
    static var pieceSize: Int { 1 << 20 }

    public init(_ source: Source) { self.source = source }

    /// Reads the peer's stream header and returns its version, refusing any but this build's.
    public mutating func readStreamHeader() throws(MigrationWireError) -> UInt32 {
        let header = try readExactly(MigrationWire.streamHeaderSize, atMessageStart: true)
        let version = try MigrationWire.version(ofStreamHeader: header)
        guard version == MigrationWire.version else { throw .unsupportedVersion(found: version, supported: MigrationWire.version) }
        return version
    }

    /// The next message, checked and decoded.
    public mutating func next() throws(MigrationWireError) -> MigrationMessage {
        let header = try readExactly(MigrationWire.frameHeaderSize, atMessageStart: true)
        let type: UInt32 = WireBytes.integer(header, at: 0)
        let length: UInt32 = WireBytes.integer(header, at: 4)
        let expected: UInt32 = WireBytes.integer(header, at: 8)
        let limit = try MigrationMessage.maximumPayload(ofType: type)
        guard Int(length) <= limit else { throw .payloadTooLarge(type: type, length: length, limit: limit) }
        let payload = try readExactly(Int(length), atMessageStart: false)
        let found = CRC32.update(CRC32.checksum(header[0..<8]), with: payload)
        guard found == expected else { throw .checksumMismatch(type: type, expected: expected, found: found) }
        return try MigrationMessage.decode(type: type, payload: payload[...])
    }

    /// Exactly `count` bytes (`count` was checked against a limit), in
    /// pieces of at most `pieceSize`: memory grows only a piece ahead of what arrived.
    private mutating func readExactly(_ count: Int, atMessageStart: Bool) throws(MigrationWireError) -> [UInt8] {
        var bytes: [UInt8] = []
        while bytes.count < count {
            let base = bytes.count
            let piece = min(count - base, Self.pieceSize)
            bytes += [UInt8](repeating: 0, count: piece)
            var filled = 0
            while filled < piece {
                let offset = base + filled
                let result = bytes.withUnsafeMutableBytes { raw in
                    Result { () throws(MigrationWireError) -> Int in
                        try source.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[offset..<base + piece]))
                    }
                }
                let got = try result.get()
                if got == 0 {
                    if atMessageStart, offset == 0 { throw .endOfStream }
                    throw .truncated(expected: count, found: offset)
                }
                filled += got
            }
        }
        return bytes
    }
}
