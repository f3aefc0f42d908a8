/// Where a `MigrationStreamReader` gets its bytes: a connection, or an array
/// (tests, the fuzzer).
public protocol MigrationByteSource {
    /// Reads up to `buffer.count` bytes into `buffer`; 0 means the stream ended.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(MigrationWireError) -> Int
}
