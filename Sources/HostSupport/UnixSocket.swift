import CHostSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Unix stream sockets for the VMM's host-side endpoints (a console, vsock):
/// each call returns a close-on-exec descriptor the caller owns, or throws
/// naming the path.
public enum UnixSocket {
    /// Why a socket call failed.
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public var operation: String
        public var path: String
        public var errno: Int32
        public var description: String { "Unix socket \(path): \(operation) failed (errno \(errno))" }
    }

    /// The longest path `sockaddr_un` holds.
    public static let maximumPathLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    private static func address(_ path: String) throws(Failure) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count <= maximumPathLength else {
            throw Failure(operation: "a path of 1 to \(maximumPathLength) bytes", path: path, errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in bytes.enumerated() { raw[i] = byte }
        }
        return address
    }

    /// A non-blocking socket listening at `path` (a stale socket file there is replaced).
    public static func listen(path: String, backlog: Int32 = 16) throws(Failure) -> Int32 {
        var address = try address(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw Failure(operation: "socket", path: path, errno: errno) }
        var status = stat()
        if lstat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            let error = errno
            close(fd)
            throw Failure(operation: "bind", path: path, errno: error)
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let error = errno
            close(fd)
            throw Failure(operation: "listen", path: path, errno: error)
        }
        return fd
    }

    /// A connection to the socket at `path`. A non-blocking one never
    /// waits: a listener whose backlog is full fails it at once with `EAGAIN`
    /// (a Unix socket has no connection in progress), so an event loop can
    /// connect on a guest's behalf without a slow host program stalling it.
    public static func connect(path: String, nonBlocking: Bool = false) throws(Failure) -> Int32 {
        var address = try address(path)
        let flags = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        let fd = socket(AF_UNIX, flags, 0)
        guard fd >= 0 else { throw Failure(operation: "socket", path: path, errno: errno) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let error = errno
            close(fd)
            throw Failure(operation: "connect", path: path, errno: error)
        }
        return fd
    }

    /// The next pending connection on `listener`, non-blocking, or `nil` when there is none.
    public static func accept(_ listener: Int32) -> Int32? {
        let fd = accept4(listener, nil, nil, Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
        return fd >= 0 ? fd : nil
    }
}
