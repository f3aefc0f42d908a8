import Foundation
import HostSupport
import VMMTesting

/// A host program connecting to a guest port through the vsock device's
/// Unix socket: `CONNECT <port>`, then `payload`, then reads the echo.
final class VsockHostClient: Sendable {
    private let result = ThreadLock<(handshake: String, echoed: [UInt8])>(("", []))
    private let thread: JoinHandle

    init(socketPath: String, port: UInt32, payload: [UInt8]) throws {
        let result = self.result
        thread = try HostThread.spawn(name: "vsock-client") {
            guard let fd = try? UnixSocket.connect(path: socketPath) else { return }
            defer { close(fd) }
            let request = Array("CONNECT \(port)\n".utf8)
            _ = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            // The answer line, a byte at a time so that nothing after it is taken.
            var line: [UInt8] = []
            var byte: UInt8 = 0
            while read(fd, &byte, 1) == 1, byte != 0x0a { line.append(byte) }
            var sent = 0
            while sent < payload.count {
                let n = payload[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                sent += n
            }
            shutdown(fd, Int32(SHUT_WR))
            let echoed = VsockHostClient.readAll(fd)
            result.withLock { $0 = (String(decoding: line, as: UTF8.self), echoed) }
        }
    }

    func finish() -> (handshake: String, echoed: [UInt8]) {
        thread.join()
        return result.withLock { $0 }
    }

    /// Everything `fd` gives until end of file (or an error).
    static func readAll(_ fd: Int32) -> [UInt8] {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            data += buffer[0..<n]
        }
        return data
    }
}
