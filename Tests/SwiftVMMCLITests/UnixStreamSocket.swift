import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A Unix stream socket for the vsock tests (the hybrid vsock's host side is
/// one): connect or listen by path, write text, read lines with a deadline.
final class UnixStreamSocket {
    enum Failure: Error, CustomStringConvertible {
        case system(String, Int32)
        case timedOut(String)
        var description: String {
            switch self {
            case .system(let call, let code): return "\(call): \(String(cString: strerror(code)))"
            case .timedOut(let what): return "timed out waiting for \(what)"
            }
        }
    }

    let descriptor: Int32
    private var buffered: [UInt8] = []

    private init(descriptor: Int32) { self.descriptor = descriptor }
    deinit { close(descriptor) }

    private static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    private static func newSocket() throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure.system("socket", errno) }
        return fd
    }

    /// Connects to the socket at `path`, retrying until it exists or `seconds` pass.
    static func connect(to path: String, seconds: Double) throws -> UnixStreamSocket {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let fd = try newSocket()
            var address = address(path)
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if result == 0 { return UnixStreamSocket(descriptor: fd) }
            let code = errno
            close(fd)
            if Date() > deadline { throw Failure.system("connect \(path)", code) }
            usleep(50_000)
        }
    }

    /// A listening socket at `path` (an old file there is removed).
    static func listen(at path: String) throws -> UnixStreamSocket {
        unlink(path)
        let fd = try newSocket()
        var address = address(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 4) == 0 else {
            let code = errno
            close(fd)
            throw Failure.system("bind/listen \(path)", code)
        }
        return UnixStreamSocket(descriptor: fd)
    }

    /// Accepts one connection on a listening socket within `seconds`.
    func accept(seconds: Double) throws -> UnixStreamSocket {
        guard try wait(seconds: seconds) else { throw Failure.timedOut("a connection") }
        let fd = Glibc.accept(descriptor, nil, nil)
        guard fd >= 0 else { throw Failure.system("accept", errno) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return UnixStreamSocket(descriptor: fd)
    }

    func write(_ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            guard n > 0 else { throw Failure.system("write", errno) }
            sent += n
        }
    }

    /// The next line, without its '\n'; nil when the peer closed first.
    func readLine(seconds: Double) throws -> String? {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if let end = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffered[..<end], as: UTF8.self)
                buffered.removeSubrange(...end)
                return line
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0, try wait(seconds: left) else {
                throw Failure.timedOut("a line (have '\(String(decoding: buffered, as: UTF8.self))')")
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if n == 0 { return nil }
            guard n > 0 else { throw Failure.system("read", errno) }
            buffered += chunk[..<n]
        }
    }

    /// Whether the socket became readable within `seconds`.
    private func wait(seconds: Double) throws -> Bool {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let result = poll(&poller, 1, Int32(max(0, seconds * 1000)))
        guard result >= 0 else { throw Failure.system("poll", errno) }
        return result > 0
    }
}
