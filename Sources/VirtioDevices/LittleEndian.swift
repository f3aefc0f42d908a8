/// Little-endian fields in the byte arrays virtio headers and
/// configuration spaces travel in.
enum LittleEndian {
    /// The bytes of `value`, lowest first.
    static func bytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    /// The `T` at `offset` in `bytes`; the caller has checked that it fits.
    static func read<T: FixedWidthInteger>(_ type: T.Type, _ bytes: [UInt8], at offset: Int) -> T {
        var value: T = 0
        for i in 0..<MemoryLayout<T>.size { value |= T(truncatingIfNeeded: bytes[offset + i]) << (8 * i) }
        return value
    }

    /// Stores `value` at `offset` in `bytes`; the caller has checked that it fits.
    static func write<T: FixedWidthInteger>(_ value: T, into bytes: inout [UInt8], at offset: Int) {
        for i in 0..<MemoryLayout<T>.size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }
}
