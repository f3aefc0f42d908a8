import Firmware
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

enum APITestError: Error, CustomStringConvertible {
    case binaryNotFound(String)
    case socket(String, Int32)
    case malformedResponse(String)
    case timedOut(String)
    var description: String {
        switch self {
        case .binaryNotFound(let path): return "swiftvmm binary not found near \(path); build it with `swift build` first"
        case .socket(let what, let code): return "\(what): \(String(cString: strerror(code)))"
        case .malformedResponse(let text): return "not an HTTP response: \(text.prefix(200))"
        case .timedOut(let what): return "timed out: \(what)"
        }
    }
}

/// The `swiftvmm` executable built next to this test bundle.
func swiftvmmBinary() throws -> String {
    if let explicit = ProcessInfo.processInfo.environment["SWIFTVMM_BINARY"] { return explicit }
    var directory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<3 {
        let candidate = directory.appendingPathComponent("swiftvmm")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
        directory = directory.deletingLastPathComponent()
    }
    throw APITestError.binaryNotFound(directory.path)
}

/// A scratch directory removed when the test's scope ends.
final class ScratchDirectory {
    let path: String
    init() throws {
        // Short: a Unix socket's path must fit in 108 bytes.
        path = "/tmp/swvm-api-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> String { path + "/" + name }
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        try Data(bytes).write(to: URL(fileURLWithPath: file(name)))
        return file(name)
    }
    func write(_ name: String, _ text: String) throws -> String { try write(name, Array(text.utf8)) }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// An HTTP response as the tests read it.
struct APIResponse: CustomStringConvertible {
    var status: Int
    var body: String
    var description: String { "\(status) \(body)" }
    /// The fault message of an error body.
    var fault: String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else { return "" }
        return object["fault_message"] as? String ?? ""
    }
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:] }
}

/// A plain blocking client on a Unix socket, one connection per request
/// (`Connection: close`), or many on one connection.
struct UnixHTTPClient {
    let path: String

    /// Opens a connection to the socket.
    func connect() throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw APITestError.socket("socket", errno) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw APITestError.socket("connect \(path)", code)
        }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func send(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw APITestError.socket("send", errno) }
            offset += written
        }
    }

    static func requestBytes(_ method: String, _ target: String, body: String?, keepAlive: Bool) -> [UInt8] {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
        if let body { text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        if !keepAlive { text += "Connection: close\r\n" }
        text += "\r\n" + (body ?? "")
        return Array(text.utf8)
    }

    /// Reads one response from `fd`.
    static func readResponse(_ fd: Int32) throws -> APIResponse {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        func headerEnd() -> Int? {
            guard data.count >= 4 else { return nil }
            for index in 0...(data.count - 4)
            where data[index] == 13 && data[index + 1] == 10 && data[index + 2] == 13 && data[index + 3] == 10 {
                return index + 4
            }
            return nil
        }
        while true {
            if let end = headerEnd() {
                let head = String(decoding: data[..<end], as: UTF8.self)
                let lines = head.split(separator: "\r\n")
                let parts = lines.first?.split(separator: " ") ?? []
                guard parts.count >= 2, let status = Int(parts[1]) else { throw APITestError.malformedResponse(head) }
                var length = 0
                for line in lines.dropFirst() where line.lowercased().hasPrefix("content-length:") {
                    length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
                }
                while data.count < end + length {
                    let count = recv(fd, &buffer, buffer.count, 0)
                    guard count > 0 else { throw APITestError.malformedResponse(head) }
                    data += buffer[..<count]
                }
                return APIResponse(status: status, body: String(decoding: data[end..<(end + length)], as: UTF8.self))
            }
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { throw APITestError.malformedResponse(String(decoding: data, as: UTF8.self)) }
            data += buffer[..<count]
        }
    }

    /// One request on a connection of its own.
    func request(_ method: String, _ target: String, _ body: String? = nil) throws -> APIResponse {
        let fd = try connect()
        defer { close(fd) }
        try Self.send(fd, Self.requestBytes(method, target, body: body, keepAlive: false))
        return try Self.readResponse(fd)
    }
}

/// `swiftvmm serve` (or the `firecracker` drop-in) running in a child
/// process, its stdout (the guest's COM1) and stderr collected as they come.
final class ServedVMM: @unchecked Sendable {
    let process = Process()
    let socketPath: String
    let client: UnixHTTPClient
    private let output = OutputBuffer()
    private let readers = DispatchGroup()

    init(arguments: [String], socketPath: String, executable: String? = nil, waitForSocket: Bool = true) throws {
        self.socketPath = socketPath
        client = UnixHTTPClient(path: socketPath)
        process.executableURL = URL(fileURLWithPath: try executable ?? swiftvmmBinary())
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // The readers hold the buffer, not this object, so that dropping it ends the child.
        // Threads of their own, not Dispatch's pool: with the whole suite running the
        // pool can be busy for seconds, and a test waiting for COM1 would see it late
        // (after a short guest had already ended).
        for (pipe, isOut) in [(out, true), (err, false)] {
            readers.enter()
            Thread.detachNewThread { [output, readers] in
                let handle = pipe.fileHandleForReading
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    output.append(chunk, toStdout: isOut)
                }
                readers.leave()
            }
        }
        if waitForSocket { try self.waitForSocket() }
    }

    convenience init(_ directory: ScratchDirectory, extraArguments: [String] = []) throws {
        let socket = directory.file("api.sock")
        try self.init(arguments: ["serve", "--api-sock", socket] + extraArguments, socketPath: socket)
    }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    func waitForSocket(seconds: Double = 20) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let fd = try? client.connect() {
                close(fd)
                return
            }
            guard process.isRunning else { throw APITestError.timedOut("swiftvmm exited before listening: \(stderr)") }
            usleep(5_000)
        }
        throw APITestError.timedOut("the API socket \(socketPath)")
    }

    var stdout: String { output.stdout }
    var stderr: String { output.stderr }

    /// Waits until the guest's output contains `text`.
    func waitForOutput(_ text: String, seconds: Double = 30) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if stdout.contains(text) { return }
            usleep(2_000)
        }
        throw APITestError.timedOut("'\(text)' on COM1; got \(stdout.suffix(200)), stderr \(stderr)")
    }

    /// Waits for the process to end and returns its status.
    func waitForExit(seconds: Double = 60) throws -> Int32 {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            throw APITestError.timedOut("swiftvmm to exit; stderr \(stderr)")
        }
        process.waitUntilExit()
        readers.wait()
        return process.terminationStatus
    }

    func kill() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        readers.wait()
    }

    /// The server process's open file descriptors.
    var fileDescriptorCount: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.processIdentifier)/fd").count) ?? -1
    }

    /// The server process's resident memory, in KiB.
    var residentKiB: Int { status(field: "VmRSS:") }
    /// Its peak resident memory, in KiB.
    var peakResidentKiB: Int { status(field: "VmHWM:") }

    private func status(field: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8) else { return -1 }
        for line in text.split(separator: "\n") where line.hasPrefix(field) {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? -1
        }
        return -1
    }

    // Requests.
    func get(_ path: String) throws -> APIResponse { try client.request("GET", path) }
    func put(_ path: String, _ body: String) throws -> APIResponse { try client.request("PUT", path, body) }
    func patch(_ path: String, _ body: String) throws -> APIResponse { try client.request("PATCH", path, body) }
}

/// What a child printed, filled by reader threads.
final class OutputBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var out = Data()
    private var err = Data()
    func append(_ data: Data, toStdout: Bool) { lock.withLock { if toStdout { out += data } else { err += data } } }
    var stdout: String { lock.withLock { String(decoding: out, as: UTF8.self) } }
    var stderr: String { lock.withLock { String(decoding: err, as: UTF8.self) } }
}

/// The slow ticker's COM1 lines for ticks `range`: `tick NN sum XXXXXXXX`,
/// the sum adding tick × 0x9e3779b9 (32-bit). Computed here, independently of any run.
func tickerLines(_ range: ClosedRange<Int>) -> [String] {
    var sum: UInt32 = 0
    var lines: [String] = []
    for tick in 1...range.upperBound {
        sum &+= UInt32(tick) &* 0x9e37_79b9
        if range.contains(tick) {
            let hexTick = String(tick, radix: 16)
            let hexSum = String(sum, radix: 16)
            lines.append(
                "tick \(String(repeating: "0", count: 2 - hexTick.count) + hexTick) sum \(String(repeating: "0", count: 8 - hexSum.count) + hexSum)"
            )
        }
    }
    return lines
}

/// The slow ticker guest written to `directory`.
func slowTicker(in directory: ScratchDirectory) throws -> String {
    try directory.write("ticker.bin", FirmwareImage.protectedSlowTicker.bytes)
}
