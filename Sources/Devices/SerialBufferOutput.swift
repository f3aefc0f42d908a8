import Synchronization
import VMCore

/// A `SerialOutput` that keeps every byte in memory, for tests and for
/// machines whose caller wants the console as a value.
///
/// Safe to read from one thread while a vCPU thread writes: with several
/// vCPUs a test reads the text while application processors print.
public final class SerialBufferOutput: SerialOutput, Sendable {
    private let storage = ThreadLock<[UInt8]>([])

    /// An empty buffer.
    public init() {}

    /// Every byte written, in order.
    public var bytes: [UInt8] { storage.withLock { $0 } }

    /// The bytes decoded as UTF-8, with invalid sequences replaced by U+FFFD.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public func write(_ byte: UInt8) {
        storage.withLock { $0.append(byte) }
    }

    /// Forgets everything written so far.
    public func removeAll() {
        storage.withLock { $0.removeAll() }
    }
}
