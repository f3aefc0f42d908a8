/// The bytes of one port-I/O or MMIO access, or of a string (`rep ins/outs`) access.
///
/// Accesses of up to 8 bytes, which is every single port or MMIO access, are
/// stored inline so that decoding an exit never touches the heap. Longer
/// buffers (string I/O) use an array. The representation is normalised: the
/// same bytes always compare equal whichever initializer made them.
public struct IOData: Hashable, Sendable, CustomStringConvertible {
    @usableFromInline enum Storage: Hashable, Sendable {
        case inline(UInt64, count: UInt8)
        case heap([UInt8])
    }

    @usableFromInline var storage: Storage

    /// The low `size` bytes of `value`, little-endian, as the CPU puts them on the bus.
    @inlinable public init(value: UInt64, size: Int) {
        precondition(size >= 0 && size <= 8, "IOData(value:size:) takes 0 to 8 bytes")
        let masked = size == 8 ? value : value & ((1 << (UInt64(size) * 8)) - 1)
        storage = .inline(masked, count: UInt8(size))
    }

    /// The given bytes, in order.
    public init<C: Collection>(bytes: C) where C.Element == UInt8 {
        if bytes.count <= 8 {
            var value: UInt64 = 0
            for (i, byte) in bytes.enumerated() { value |= UInt64(byte) << (UInt64(i) * 8) }
            storage = .inline(value, count: UInt8(bytes.count))
        } else {
            storage = .heap(Array(bytes))
        }
    }

    /// An access of `size` bytes whose every bit is set: what an empty bus reads.
    @inlinable public static func allOnes(size: Int) -> IOData {
        IOData(value: .max, size: min(size, 8))
    }

    /// The number of bytes.
    @inlinable public var count: Int {
        switch storage {
        case .inline(_, let count): return Int(count)
        case .heap(let bytes): return bytes.count
        }
    }

    /// The first (up to) 8 bytes as a little-endian integer.
    @inlinable public var value: UInt64 {
        switch storage {
        case .inline(let value, _): return value
        case .heap(let bytes): return element(0, size: 8, in: bytes)
        }
    }

    /// The bytes as an array (allocates; not for hot paths).
    public var bytes: [UInt8] {
        switch storage {
        case .inline(let value, let count):
            return (0..<Int(count)).map { UInt8(truncatingIfNeeded: value >> (UInt64($0) * 8)) }
        case .heap(let bytes): return bytes
        }
    }

    /// Element `index` of a string access made of `size`-byte elements, little-endian.
    /// Elements wider than 8 bytes do not exist on x86; `size` is clamped to 1...8.
    @inlinable public func element(_ index: Int, size: Int) -> UInt64 {
        let size = min(max(size, 1), 8)
        guard index >= 0 else { return 0 }
        switch storage {
        case .inline(let value, _):
            if index * size >= 8 { return 0 }
            let shifted = value >> (UInt64(index * size) * 8)
            return size == 8 ? shifted : shifted & ((1 << (UInt64(size) * 8)) - 1)
        case .heap(let bytes):
            return element(index * size, size: size, in: bytes)
        }
    }

    @inlinable func element(_ start: Int, size: Int, in bytes: [UInt8]) -> UInt64 {
        var value: UInt64 = 0
        var i = 0
        while i < size, start + i < bytes.count {
            value |= UInt64(bytes[start + i]) << (UInt64(i) * 8)
            i += 1
        }
        return value
    }

    public var description: String {
        count <= 8 ? "\(hex(value))/\(count)" : "\(count) bytes"
    }
}
