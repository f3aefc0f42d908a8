#if canImport(Glibc)
    import Glibc
#endif

/// Sockets for migration addresses: connect, listen, accept. Each call
/// returns a close-on-exec descriptor the caller owns, or throws naming the call.
public enum MigrationSocket {
    /// How long a TCP connect may take.
    static let connectTimeoutMilliseconds: Int32 = 10_000

    /// A blocking connection to `address`.
    public static func connect(_ address: MigrationAddress) throws(MigrationWireError) -> Int32 {
        switch address {
        case .unix(let path):
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw .io(operation: "socket", errno: errno) }
            var storage = try unixAddress(path)
            let result = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard result == 0 else {
                let code = errno
                close(fd)
                throw .io(operation: "connect to \(address)", errno: code)
            }
            return fd
        case .tcp(let host, let port):
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw .io(operation: "socket", errno: errno) }
            var storage: sockaddr_in
            do { storage = try inetAddress(host, port) } catch {
                close(fd)
                throw error
            }
            // Non-blocking, so that an unreachable host fails after `connectTimeout`, not after TCP's minutes of retries.
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            let result = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            var code: Int32 = result == 0 ? 0 : errno
            if code == EINPROGRESS {
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = poll(&poller, 1, connectTimeoutMilliseconds)
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                if ready == 1, getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 { code = error } else { code = ETIMEDOUT }
            }
            guard code == 0 else {
                close(fd)
                throw .io(operation: "connect to \(address)", errno: code)
            }
            _ = fcntl(fd, F_SETFL, flags)
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            return fd
        }
    }

    /// A blocking socket listening at `address` (a stale Unix socket file is replaced).
    public static func listen(_ address: MigrationAddress) throws(MigrationWireError) -> Int32 {
        let fd: Int32
        let bound: Int32
        switch address {
        case .unix(let path):
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw .io(operation: "socket", errno: errno) }
            var storage = try unixAddress(path)
            var status = stat()
            if lstat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
            bound = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        case .tcp(let host, let port):
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw .io(operation: "socket", errno: errno) }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var storage = try inetAddress(host, port)
            bound = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard bound == 0, Glibc.listen(fd, 1) == 0 else {
            let code = errno
            close(fd)
            throw .io(operation: "listen on \(address)", errno: code)
        }
        return fd
    }

    /// The next connection on `listener`, waiting at most `timeout` (forever when nil).
    public static func accept(_ listener: Int32, timeout: Duration? = nil) throws(MigrationWireError) -> Int32 {
        var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        let milliseconds =
            timeout.map { Int32(clamping: $0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000) } ?? -1
        while true {
            let ready = poll(&poller, 1, milliseconds)
            if ready < 0, errno == EINTR { continue }
            guard ready >= 0 else { throw .io(operation: "poll", errno: errno) }
            guard ready > 0 else { throw .timedOut(operation: "waiting for the source to connect") }
            break
        }
        let fd = Glibc.accept(listener, nil, nil)
        guard fd >= 0 else { throw .io(operation: "accept", errno: errno) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return fd
    }

    private static func unixAddress(_ path: String) throws(MigrationWireError) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw .io(operation: "a Unix socket path of 1 to 107 bytes (\(path))", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, byte) in bytes.enumerated() { raw[i] = byte } }
        return address
    }

    private static func inetAddress(_ host: String, _ port: UInt16) throws(MigrationWireError) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        let name = host == "localhost" ? "127.0.0.1" : host
        guard inet_pton(AF_INET, name, &address.sin_addr) == 1 else {
            throw .io(operation: "an IPv4 address or localhost (\(host))", errno: EINVAL)
        }
        return address
    }
}
