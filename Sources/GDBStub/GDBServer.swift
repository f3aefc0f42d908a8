import HostSupport
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// The GDB stub's socket: listens on a `GDBEndpoint`, serves one debugger at
/// a time on a thread of its own, and speaks the remote protocol through a
/// `GDBEngine` to a `DebugTarget`.
///
/// A slow or vanished debugger only ever holds the stop it asked for: the
/// vCPUs never wait on the socket. Malformed packets are answered (`-` for a
/// bad checksum or an oversized packet, `E01` for one that cannot be read,
/// an empty packet for one not implemented); a debugger that disconnects,
/// even in the middle of a packet, detaches (breakpoints removed, the guest
/// runs on) and the stub waits for the next one.
public final class GDBServer: @unchecked Sendable {
    // Unchecked: `thread` is touched only by the creating thread; everything
    // else belongs to the server thread, apart from `stops` (locked) and the
    // pipe and `stopping`, which are made for crossing threads.
    public let endpoint: GDBEndpoint
    private let target: any DebugTarget
    private let log: @Sendable (String) -> Void
    private let listener: Int32
    /// A pipe that wakes the server thread: a stop arrived, or the server ends.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let stops = ThreadLock<[DebugStop]>([])
    private let stopping = ThreadLock(false)
    private var thread: JoinHandle?

    /// Binds and listens at once, so that a bad endpoint fails before the guest starts.
    public init(endpoint: GDBEndpoint, target: any DebugTarget, log: @escaping @Sendable (String) -> Void = { _ in })
        throws(GDBServerError)
    {
        self.endpoint = endpoint
        self.target = target
        self.log = log
        listener = try Self.listen(on: endpoint)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            close(listener)
            throw .socket(operation: "pipe2", endpoint: endpoint.description, errno: errno)
        }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, O_NONBLOCK)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        close(listener)
        close(wakeRead)
        close(wakeWrite)
        if case .unix(let path) = endpoint { unlink(path) }
    }

    /// Starts serving on the stub's thread.
    public func start() throws(GDBServerError) {
        do { thread = try HostThread.spawn(name: "gdb stub") { [self] in serve() } } catch { throw .noThread }
    }

    /// Ends the stub: a stop still owed (the guest's exit) is sent first, then the connection closes.
    public func stop() {
        stopping.withLock { $0 = true }
        wake()
        thread?.join()
        thread = nil
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private var isStopping: Bool { stopping.withLock { $0 } }

    // MARK: The server thread

    private func serve() {
        while !isStopping {
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 2, -1) >= 0 else { continue }
            if fds[1].revents != 0 { drainWake() }
            guard fds[0].revents & Int16(POLLIN) != 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            if case .tcp = endpoint {
                var one: Int32 = 1
                setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            log("debugger connected on \(endpoint)")
            session(client)
            close(client)
            log("debugger disconnected")
        }
    }

    private func drainWake() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &buffer, buffer.count) > 0 {}
    }

    /// One debugger's connection, until it detaches, kills, disconnects or the server stops.
    private func session(_ client: Int32) {
        stops.withLock { $0.removeAll() }
        let engine = GDBEngine(target: target) { [stops, wakeWrite] stop in
            stops.withLock { $0.append(stop) }
            var byte: UInt8 = 1
            _ = write(wakeWrite, &byte, 1)
        }
        var decoder = GDBPacketDecoder(maximumPayload: engine.packetSize)
        var lastSent: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        func send(_ bytes: [UInt8]) -> Bool {
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { Glibc.send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { return false }
                offset += n
            }
            return true
        }
        func sendPacket(_ payload: [UInt8]) -> Bool {
            lastSent = GDBPacketEncoder.frame(payload)
            return send(lastSent)
        }
        func deliverStops() -> Bool {
            for stop in stops.withLock({ s in
                defer { s.removeAll() }; return s
            }) where engine.running {
                if !sendPacket(engine.stopped(stop)) { return false }
            }
            return true
        }
        while true {
            var fds = [pollfd(fd: client, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 2, -1) >= 0 else { continue }
            if fds[1].revents != 0 {
                drainWake()
                guard deliverStops() else { break }
                if isStopping { return }
            }
            guard fds[0].revents != 0 else { continue }
            let count = read(client, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                if decoder.isInsidePacket { log("debugger disconnected in the middle of a packet") }
                break
            }
            for input in decoder.feed(buffer[..<count]) {
                switch input {
                case .packet(let payload):
                    if engine.acknowledges, !send([UInt8(ascii: "+")]) { break }
                    switch engine.handle(GDBCommand(payload: payload)) {
                    case .reply(let reply): _ = sendPacket(reply)
                    case .resumed: break
                    case .replyAndClose(let reply):
                        _ = sendPacket(reply)
                        return
                    case .close:
                        return
                    }
                case .badChecksum, .oversized:
                    if engine.acknowledges { _ = send([UInt8(ascii: "-")]) }
                case .retransmitRequested:
                    if engine.acknowledges, !lastSent.isEmpty { _ = send(lastSent) }
                case .acknowledged:
                    break
                case .interrupt:
                    if engine.running { target.interrupt() }
                }
            }
        }
        // Gone without detaching: stop the target if it runs, then detach as `D` would.
        if engine.running {
            target.interrupt()
            // The target reports the stop at once; a bounded wait all the same, so a stub never hangs on it.
            for _ in 0..<50 where engine.running && !isStopping {
                var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
                _ = poll(&fds, 1, 100)
                drainWake()
                for stop in stops.withLock({ s in
                    defer { s.removeAll() }; return s
                }) { _ = engine.stopped(stop) }
            }
        }
        if engine.running { target.detach() } else { _ = engine.handle(.detach) }
    }

    // MARK: Listening

    private static func listen(on endpoint: GDBEndpoint) throws(GDBServerError) -> Int32 {
        switch endpoint {
        case .unix(let path):
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw .socket(operation: "socket", endpoint: endpoint.description, errno: errno) }
            unlink(path)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: path.utf8.prefix(raw.count - 1))
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            return try finish(fd, bound: bound, endpoint: endpoint)
        case .tcp(let host, let port):
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            let name = host == "localhost" ? "127.0.0.1" : host
            guard inet_pton(AF_INET, name, &address.sin_addr) == 1 else { throw .unsupportedHost(host) }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw .socket(operation: "socket", endpoint: endpoint.description, errno: errno) }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            return try finish(fd, bound: bound, endpoint: endpoint)
        }
    }

    private static func finish(_ fd: Int32, bound: Int32, endpoint: GDBEndpoint) throws(GDBServerError) -> Int32 {
        guard bound == 0 else {
            let error = errno
            close(fd)
            throw .socket(operation: "bind", endpoint: endpoint.description, errno: error)
        }
        guard Glibc.listen(fd, 1) == 0 else {
            let error = errno
            close(fd)
            throw .socket(operation: "listen", endpoint: endpoint.description, errno: error)
        }
        return fd
    }
}

/// `strerror`, for `GDBServerError`'s description.
func strerrorText(_ code: Int32) -> UnsafeMutablePointer<CChar> { strerror(code) }
