/// CRC-32 (IEEE 802.3, the polynomial of zlib, PNG and gzip), which the
/// snapshot state file carries over its payload and the migration stream over
/// each message: a truncated or damaged file or message is refused with a
/// clear error instead of being decoded into nonsense. Not a defence against
/// someone forging one; the decoders' checks are (every value is validated
/// as it is restored).
///
/// Eight bytes a step through eight tables ("slicing-by-8"): a migration
/// checksums every page it sends, so a byte at a time would cost more than
/// the copy.
public enum CRC32 {
    /// `tables[k][b]`: the CRC of byte `b` followed by `k` zero bytes.
    private static let tables: [[UInt32]] = {
        let first: [UInt32] = (0..<256).map { index in
            var value = UInt32(index)
            for _ in 0..<8 { value = value & 1 != 0 ? 0xedb8_8320 ^ (value >> 1) : value >> 1 }
            return value
        }
        var tables = [first]
        for k in 1..<8 { tables.append((0..<256).map { tables[k - 1][$0] >> 8 ^ first[Int(tables[k - 1][$0] & 0xff)] }) }
        return tables
    }()
    private static let flat: [UInt32] = tables.flatMap { $0 }

    /// The checksum of `bytes`.
    public static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        update(0, with: bytes)
    }

    /// The checksum of the bytes that gave `crc` followed by `bytes`, so that
    /// a message's parts can be checksummed where they lie.
    public static func update<Bytes: Sequence>(_ crc: UInt32, with bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var value = crc ^ 0xffff_ffff
        let done: Bool? = bytes.withContiguousStorageIfAvailable { buffer in
            value = update(value, buffer: UnsafeRawBufferPointer(buffer))
            return true
        }
        if done == nil {
            let table = tables[0]
            for byte in bytes { value = table[Int((value ^ UInt32(byte)) & 0xff)] ^ (value >> 8) }
        }
        return value ^ 0xffff_ffff
    }

    /// The checksum of the bytes that gave `crc` followed by those of `buffer`.
    public static func update(_ crc: UInt32, bytes buffer: UnsafeRawBufferPointer) -> UInt32 {
        update(crc ^ 0xffff_ffff, buffer: buffer) ^ 0xffff_ffff
    }

    /// The raw (uninverted) register after `buffer`.
    private static func update(_ start: UInt32, buffer: UnsafeRawBufferPointer) -> UInt32 {
        flat.withUnsafeBufferPointer { t in
            var value = start
            var i = 0
            let count = buffer.count
            while i + 8 <= count {
                let low = value ^ UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: i, as: UInt32.self))
                let high = UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self))
                value =
                    t[7 * 256 + Int(low & 0xff)] ^ t[6 * 256 + Int((low >> 8) & 0xff)] ^ t[5 * 256 + Int((low >> 16) & 0xff)]
                    ^ t[4 * 256 + Int(low >> 24)] ^ t[3 * 256 + Int(high & 0xff)] ^ t[2 * 256 + Int((high >> 8) & 0xff)]
                    ^ t[256 + Int((high >> 16) & 0xff)] ^ t[Int(high >> 24)]
                i += 8
            }
            while i < count {
                value = t[Int((value ^ UInt32(buffer[i])) & 0xff)] ^ (value >> 8)
                i += 1
            }
            return value
        }
    }
}
