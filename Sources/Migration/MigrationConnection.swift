#if canImport(Glibc)
    import Glibc
#endif

/// One end of a migration stream on a socket: sends frames, reads checked
/// messages, and passes a descriptor alongside one (`SCM_RIGHTS`, Unix
/// sockets only). It owns its descriptor and closes it when it ends.
///
/// Blocking, with a receive timeout (`SO_RCVTIMEO`), so that a peer that
/// stops talking ends the migration instead of hanging it. One thread at a time.
public final class MigrationConnection {
    /// The socket.
    public let fd: Int32
    private var reader: MigrationStreamReader<SocketSource>
    /// Bytes sent and received so far, for bandwidth and progress.
    public private(set) var bytesSent: UInt64 = 0
    public var bytesReceived: UInt64 { reader.source.received }
    /// A descriptor that arrived with the last message (the caller takes it), or -1.
    public var receivedDescriptor: Int32 {
        get { reader.source.descriptor }
        set { reader.source.descriptor = newValue }
    }

    /// Takes ownership of the connected socket `fd`.
    public init(fd: Int32, receiveTimeout: Duration = .seconds(30)) {
        self.fd = fd
        reader = MigrationStreamReader(SocketSource(fd: fd))
        setReceiveTimeout(receiveTimeout)
    }

    deinit {
        if reader.source.descriptor >= 0 { close(reader.source.descriptor) }
        close(fd)
    }

    /// Whether the socket is a Unix socket: the peer is on this host, and a
    /// descriptor can go with a message (`send(_:passing:)`).
    /// The corresponding C function is `getsockopt` (`SO_DOMAIN`).
    public var isLocal: Bool {
        var domain: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0 && domain == AF_UNIX
    }

    /// Takes the descriptor that came with the last message (the caller closes it), or -1.
    public func takeReceivedDescriptor() -> Int32 {
        defer { receivedDescriptor = -1 }
        return receivedDescriptor
    }

    /// How long a read waits for the peer before failing with `.timedOut`.
    public func setReceiveTimeout(_ timeout: Duration) {
        let (seconds, attoseconds) = timeout.components
        var value = timeval(tv_sec: Int(max(0, seconds)), tv_usec: Int(attoseconds / 1_000_000_000_000))
        if value.tv_sec == 0, value.tv_usec == 0 { value.tv_usec = 1 }
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Connects to `address` (a blocking connect).
    public static func connect(to address: MigrationAddress, receiveTimeout: Duration = .seconds(30)) throws(MigrationWireError)
        -> MigrationConnection
    {
        MigrationConnection(fd: try MigrationSocket.connect(address), receiveTimeout: receiveTimeout)
    }

    // MARK: Sending

    /// Sends our stream header with `version` (a test may claim another).
    public func sendStreamHeader(version: UInt32 = MigrationWire.version) throws(MigrationWireError) {
        try sendAll(MigrationWire.streamHeader(version: version))
    }

    /// Sends `message`.
    public func send(_ message: MigrationMessage) throws(MigrationWireError) { try sendAll(message.frame()) }

    /// Sends `message` with `descriptor` attached (`SCM_RIGHTS`); the descriptor stays the caller's.
    public func send(_ message: MigrationMessage, passing descriptor: Int32) throws(MigrationWireError) {
        let frame = message.frame()
        let length = MemoryLayout<cmsghdr>.size + MemoryLayout<Int32>.size
        let space = (length + MemoryLayout<Int>.size - 1) / MemoryLayout<Int>.size * MemoryLayout<Int>.size
        var buffer = [UInt8](repeating: 0, count: space)
        let sent: Int = frame.withUnsafeBytes { bytes in
            buffer.withUnsafeMutableBytes { raw in
                var vector = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
                guard let control = raw.baseAddress else { return -1 }
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var header = msghdr()
                    header.msg_iov = vectorPointer
                    header.msg_iovlen = 1
                    header.msg_control = control
                    header.msg_controllen = raw.count
                    let cmsg = control.assumingMemoryBound(to: cmsghdr.self)
                    cmsg.pointee.cmsg_level = SOL_SOCKET
                    cmsg.pointee.cmsg_type = Int32(SCM_RIGHTS)
                    cmsg.pointee.cmsg_len = length
                    (control + MemoryLayout<cmsghdr>.size).storeBytes(of: descriptor, as: Int32.self)
                    return sendmsg(fd, &header, Int32(MSG_NOSIGNAL))
                }
            }
        }
        guard sent >= 0 else { throw .io(operation: "sendmsg with a descriptor", errno: errno) }
        bytesSent += UInt64(sent)
        if sent < frame.count { try sendAll(Array(frame[sent...])) }
    }

    /// Sends an `error` message if the peer still listens; failures are ignored.
    public func sendErrorQuietly(_ message: String) { try? send(.error(message)) }

    private func sendAll(_ bytes: [UInt8]) throws(MigrationWireError) {
        var done = 0
        while done < bytes.count {
            let written = bytes.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.send(fd, base + done, raw.count - done, Int32(MSG_NOSIGNAL))
            }
            if written < 0, errno == EINTR { continue }
            if written < 0, errno == EAGAIN || errno == EWOULDBLOCK { throw .timedOut(operation: "send") }
            guard written > 0 else { throw .io(operation: "send", errno: written == 0 ? EPIPE : errno) }
            done += written
        }
        bytesSent += UInt64(bytes.count)
    }

    // MARK: Receiving

    /// Reads the peer's stream header (refusing another version).
    public func receiveStreamHeader() throws(MigrationWireError) { _ = try reader.readStreamHeader() }

    /// The next message; an `error` from the peer comes back as a message, for the caller to report.
    public func receive() throws(MigrationWireError) -> MigrationMessage { try reader.next() }

    /// Stops both directions, so that the peer sees the end at once.
    public func shutdown() { Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
}

/// Reads from a socket with `recvmsg`, keeping a descriptor passed alongside.
struct SocketSource: MigrationByteSource {
    let fd: Int32
    var received: UInt64 = 0
    var descriptor: Int32 = -1

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(MigrationWireError) -> Int {
        let control = MemoryLayout<cmsghdr>.size + MemoryLayout<Int32>.size
        var space = [UInt8](repeating: 0, count: (control + 7) / 8 * 8 + 16)
        while true {
            let got: Int = space.withUnsafeMutableBytes { raw in
                guard let controlBuffer = raw.baseAddress else { return -1 }
                var vector = iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var header = msghdr()
                    header.msg_iov = vectorPointer
                    header.msg_iovlen = 1
                    header.msg_control = controlBuffer
                    header.msg_controllen = raw.count
                    let result = recvmsg(fd, &header, Int32(MSG_CMSG_CLOEXEC))
                    if result > 0, header.msg_controllen >= control {
                        let cmsg = controlBuffer.assumingMemoryBound(to: cmsghdr.self)
                        if cmsg.pointee.cmsg_level == SOL_SOCKET, cmsg.pointee.cmsg_type == Int32(SCM_RIGHTS) {
                            let passed = (controlBuffer + MemoryLayout<cmsghdr>.size).load(as: Int32.self)
                            if descriptor >= 0 { close(descriptor) }
                            descriptor = passed
                        }
                    }
                    return result
                }
            }
            if got < 0, errno == EINTR { continue }
            if got < 0, errno == EAGAIN || errno == EWOULDBLOCK { throw .timedOut(operation: "receive") }
            if got < 0, errno == ECONNRESET { return 0 }
            guard got >= 0 else { throw .io(operation: "receive", errno: errno) }
            received += UInt64(got)
            return got
        }
    }
}
