/// CRC-32 (IEEE 802.3, the polynomial of zlib, PNG and gzip), which the
/// snapshot state file carries over its payload: a truncated or damaged file
/// is refused with a clear error instead of being decoded into nonsense.
/// Not a defence against someone forging a snapshot; the decoder's checks
/// are (every value is validated as it is restored).
enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 != 0 ? 0xedb8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    /// The checksum of `bytes`.
    static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var crc: UInt32 = 0xffff_ffff
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8) }
        return crc ^ 0xffff_ffff
    }
}
