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
///
/// A reader that stops reading (a pipe nobody drains, a terminal stopped with
/// Ctrl-S) would block the vCPU thread in `write` for as long as it pleases:
/// the guest would hang and the machine could not even be stopped. So a flush
/// to a pipe, socket or terminal first waits at most `stallLimit` for room,
/// then drops the output (counted in `droppedBytes`) without waiting again
/// until the reader takes something. Regular files never block.
public final class FileSerialOutput: SerialOutput {
    private let fd: Int32
    private let ownsDescriptor: Bool
    /// Whether `fd` can block a write (not a regular file).
    private let mayBlock: Bool
    /// The reader did not make room within `stallLimit`: drop output until it does.
    private var readerStalled = false
    /// How long a flush waits for a reader that does not keep up (ms).
    static let stallLimitMilliseconds: Int32 = 1000
    private var buffer: [UInt8] = []
    private static let capacity = 4096
    /// The rate limit, from `OutputRateLimit.forNewOutputs` when this was made.
    private var bucket = OutputRateLimit.forNewOutputs.map(TokenBucketState.init)
    /// Bytes the rate limit dropped, and bytes a stalled reader made us drop.
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
        mayBlock = Self.mayBlock(fd)
        buffer.reserveCapacity(Self.capacity)
    }

    private init(fd: Int32, owns: Bool) {
        self.fd = fd
        ownsDescriptor = owns
        mayBlock = Self.mayBlock(fd)
        buffer.reserveCapacity(Self.capacity)
    }

    private static func mayBlock(_ fd: Int32) -> Bool {
        var status = stat()
        return fstat(fd, &status) != 0 || status.st_mode & S_IFMT != S_IFREG
    }

    /// Whether a write of up to a page will not block, waiting at most
    /// `milliseconds` for it (a pipe with a free page, a terminal or socket
    /// with room say so with `POLLOUT`).
    private func writable(waitingAtMost milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        // A deadline, not a timeout per call: the vCPU thread is kicked with a
        // signal (a PC's halt probe every 200 ms), which ends `poll` with EINTR.
        let deadline = ContinuousClock.now + .milliseconds(milliseconds)
        var wait = milliseconds
        while true {
            let ready = poll(&entry, 1, wait)
            if ready < 0 && errno == EINTR {
                let left = ContinuousClock.now.duration(to: deadline).components
                wait = max(0, Int32(clamping: left.seconds * 1000 + left.attoseconds / 1_000_000_000_000_000))
                continue
            }
            // An error or hang-up lets the write fail at once instead.
            return ready != 0
        }
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
            if mayBlock {
                // Polled each time round: a partial write means the reader is behind.
                guard writable(waitingAtMost: readerStalled ? 0 : Self.stallLimitMilliseconds) else {
                    readerStalled = true
                    droppedBytes += end - written
                    break
                }
                readerStalled = false
            }
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
