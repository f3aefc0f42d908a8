/// A stream that is an array of bytes, handed out `chunk` bytes at a time at
/// most (so that a test or the fuzzer also covers messages split across reads).
public struct ByteArraySource: MigrationByteSource {
    private let bytes: [UInt8]
    private var offset = 0
    private let chunk: Int

    public init(_ bytes: [UInt8], chunk: Int = .max) {
        self.bytes = bytes
        self.chunk = max(1, chunk)
    }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(MigrationWireError) -> Int {
        let count = min(buffer.count, bytes.count - offset, chunk)
        guard count > 0 else { return 0 }
        bytes.withUnsafeBytes { source in
            guard let from = source.baseAddress else { return }
            buffer.baseAddress?.copyMemory(from: from + offset, byteCount: count)
        }
        offset += count
        return count
    }
}
