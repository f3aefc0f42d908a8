import Foundation
import HostSupport
import VMMTesting

/// The host end of a guest-initiated vsock connection: accepts one on a
/// listening Unix socket, reads until the guest closes its side, answers
/// `pong:` and what it read, and closes.
final class VsockHostServer: Sendable {
    private let received = ThreadLock<String?>(nil)
    private let thread: JoinHandle

    init(listener: Int32) throws {
        let received = self.received
        thread = try HostThread.spawn(name: "vsock-server") {
            let deadline = ContinuousClock.now + .seconds(60)
            var fd: Int32?
            while fd == nil, ContinuousClock.now < deadline {
                fd = UnixSocket.accept(listener)
                if fd == nil { usleep(10_000) }
            }
            guard let fd else { return }
            defer { close(fd) }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            let data = VsockHostClient.readAll(fd)
            let reply = Array("pong:".utf8) + data
            _ = reply.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            received.withLock { $0 = String(decoding: data, as: UTF8.self) }
        }
    }

    /// What the guest sent (`nil` if it never connected).
    func finish() -> String? {
        thread.join()
        return received.withLock { $0 }
    }
}
