/// Little-endian integers into and out of byte arrays, for the wire format.
enum WireBytes {
    static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        for i in 0..<MemoryLayout<T>.size { bytes.append(UInt8(truncatingIfNeeded: value >> (i * 8))) }
    }

    /// The integer at `offset`; the caller has checked that the bytes are there.
    static func integer<T: FixedWidthInteger, Bytes: RandomAccessCollection>(_ bytes: Bytes, at offset: Int) -> T
    where Bytes.Element == UInt8, Bytes.Index == Int {
        var value: T = 0
        let start = bytes.startIndex + offset
        for i in 0..<MemoryLayout<T>.size { value |= T(bytes[start + i]) << (i * 8) }
        return value
    }
}
