import Devices

#if canImport(Glibc)
    import Glibc
#endif

/// Serial output to a file descriptor (stdout, or a file it opens and owns).
///
/// Bytes are collected and written a line at a time (or every 4 KiB), so a
/// guest printing a line costs one `write`, not one per character; `flush()`
/// writes what is left, and the machine calls it whenever it stops or the guest
/// waits for input.
public final class FileSerialOutput: SerialOutput {
    private let fd: Int32
    private let ownsDescriptor: Bool
    private var buffer: [UInt8] = []
    private static let capacity = 4096
    /// The rate limit, from `OutputRateLimit.forNewOutputs` when this was made.
    private var bucket = OutputRateLimit.forNewOutputs.map(TokenBucketState.init)
    /// Bytes the rate limit dropped.
    public private(set) var droppedBytes = 0

    /// Writes each byte at once instead of a line at a time: for a person at a
    /// terminal, who must see a prompt or an echoed key without waiting.
    public var unbuffered = false

    /// Output to standard output, which stays open afterwards; unbuffered when it is a terminal.
    public static func standardOutput() -> FileSerialOutput {
        let output = FileSerialOutput(fd: STDOUT_FILENO, owns: false)
        output.unbuffered = isatty(STDOUT_FILENO) == 1
        return output
    }

    /// Output to `path`, created or truncated.
    public init(path: String) throws(MachineError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw .cannotOpenOutput(path: path, errno: errno) }
        self.fd = fd
        ownsDescriptor = true
        buffer.reserveCapacity(Self.capacity)
    }

    private init(fd: Int32, owns: Bool) {
        self.fd = fd
        ownsDescriptor = owns
        buffer.reserveCapacity(Self.capacity)
    }

    deinit {
        flush()
        if ownsDescriptor { close(fd) }
    }

    public func write(_ byte: UInt8) {
        buffer.append(byte)
        if unbuffered || byte == UInt8(ascii: "\n") || buffer.count >= Self.capacity { flush() }
    }

    public func flush() {
        var written = 0
        var end = buffer.count
        if var state = bucket {
            end = state.take(buffer.count)
            bucket = state
            droppedBytes += buffer.count - end
        }
        while written < end {
            let n = buffer.withUnsafeBytes { bytes in
                guard let base = bytes.baseAddress else { return 0 }
                return Glibc.write(fd, base + written, end - written)
            }
            if n < 0 && errno == EINTR { continue }
            // A closed pipe or full disk must not stop the guest: drop the output.
            if n <= 0 { break }
            written += n
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
