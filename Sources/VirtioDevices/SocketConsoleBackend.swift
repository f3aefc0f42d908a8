import HostSupport
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A virtio console on a Unix socket: the VMM listens at the path, one
/// client at a time is the console (what the guest writes goes to it, what
/// it sends is the guest's input), and a new client replaces the old one.
/// Output while no client is connected, or that a slow client cannot take
/// at once, is dropped and counted: the guest never waits for the host.
public final class SocketConsoleBackend: VirtioConsoleBackend, @unchecked Sendable {
    public let path: String
    private let listener: Int32
    private let client = Mutex<Int32?>(nil)
    private let dropped = Atomic<Int>(0)
    private let loop = Mutex<EventLoop?>(nil)

    /// Listens at `path`.
    public init(path: String) throws(ConsoleBackendError) {
        self.path = path
        do { listener = try UnixSocket.listen(path: path, backlog: 1) } catch { throw .socket(error) }
    }

    deinit {
        let loop = loop.withLock { $0 }
        try? loop?.unregister(fd: listener)
        close(listener)
        if let fd = client.withLock({ $0 }) {
            try? loop?.unregister(fd: fd)
            close(fd)
        }
        unlink(path)
    }

    /// Output bytes dropped so far.
    public var droppedBytes: Int { dropped.load(ordering: .relaxed) }

    public func write(_ bytes: [UInt8]) {
        let sent: Int = client.withLock { fd in
            guard let fd else { return 0 }
            return bytes.withUnsafeBytes { max(0, send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))) }
        }
        if sent < bytes.count { dropped.add(bytes.count - sent, ordering: .relaxed) }
    }

    public func start(on loop: EventLoop, deliver: @escaping @Sendable ([UInt8]) -> Void) {
        self.loop.withLock { $0 = loop }
        let listener = self.listener
        try? loop.register(fd: listener) { [weak self] _ in
            guard let self, let fd = UnixSocket.accept(listener) else { return }
            let previous = self.client.withLock { client in
                defer { client = fd }
                return client
            }
            if let previous { self.disconnect(previous, loop: loop) }
            try? loop.register(fd: fd) { [weak self] _ in
                var buffer = [UInt8](repeating: 0, count: 4096)
                let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if got > 0 {
                    deliver(Array(buffer[..<got]))
                } else if got == 0 || (errno != EAGAIN && errno != EINTR) {
                    guard let self else { return }
                    let current = self.client.withLock { client in
                        defer { if client == fd { client = nil } }
                        return client == fd
                    }
                    if current { self.disconnect(fd, loop: loop) }
                }
            }
        }
    }

    private func disconnect(_ fd: Int32, loop: EventLoop) {
        try? loop.unregister(fd: fd)
        close(fd)
    }
}
