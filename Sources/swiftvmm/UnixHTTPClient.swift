import HostSupport

#if canImport(Glibc)
    import Glibc
#endif

/// One HTTP/1.1 request to the API's Unix socket and its answer, for
/// `swiftvmm migrate`: a new connection per request, `Connection: close`.
struct UnixHTTPClient {
    let path: String

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    struct Response {
        var status: Int
        var body: String
    }

    /// Sends `method path` with `body` and returns the status and body.
    func request(_ method: String, _ target: String, body: String = "") throws -> Response {
        let fd = try UnixSocket.connect(path: path)
        defer { close(fd) }
        var text = "\(method) \(target) HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\nConnection: close\r\n"
        if !body.isEmpty || method == "PUT" { text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        text += "\r\n" + body
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.send(fd, base + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
            }
            guard n > 0 else { throw Failure(description: "\(path): send failed (errno \(errno))") }
            sent += n
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            answer += buffer[0..<n]
            if let response = Self.parse(answer) { return response }
        }
        guard let response = Self.parse(answer, complete: true) else {
            throw Failure(description: "\(path): no complete HTTP answer")
        }
        return response
    }

    /// The response in `bytes` once all of it (by Content-Length) is there.
    static func parse(_ bytes: [UInt8], complete: Bool = false) -> Response? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return nil }
        let head = text[..<split.lowerBound]
        let body = String(text[split.upperBound...])
        let statusLine = head.prefix { $0 != "\r" }.split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
        var length = 0
        for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
            length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        guard body.utf8.count >= length || complete else { return nil }
        return Response(status: status, body: body)
    }
}
