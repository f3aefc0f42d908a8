/// A `SerialOutput` that keeps every byte in memory, for tests and for
/// machines whose caller wants the console as a value.
public final class SerialBufferOutput: SerialOutput {
    /// Every byte written, in order.
    public private(set) var bytes: [UInt8] = []

    /// An empty buffer.
    public init() {}

    /// The bytes decoded as UTF-8, with invalid sequences replaced by U+FFFD.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public func write(_ byte: UInt8) {
        bytes.append(byte)
    }

    /// Forgets everything written so far.
    public func removeAll() {
        bytes.removeAll()
    }
}
