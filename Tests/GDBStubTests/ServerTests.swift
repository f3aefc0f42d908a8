import GDBStub
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The stub's socket with a fake target: what a debugger sends wrong is
/// answered per the protocol, and a debugger that vanishes mid-packet leaves
/// the stub serving the next one.
@Suite struct ServerTests {
    func connect(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path.utf8) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(result == 0, "connect: errno \(errno)")
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    func send(_ fd: Int32, _ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }

    /// Reads until `expected` has arrived (or the timeout); returns what came.
    func receive(_ fd: Int32, until expected: String) -> String {
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !text.contains(expected) {
            let n = read(fd, &buffer, buffer.count)
            guard n > 0 else { break }
            text += String(decoding: buffer[..<n], as: UTF8.self)
        }
        return text
    }

    func packet(_ payload: String) -> [UInt8] { GDBPacketEncoder.frame(Array(payload.utf8)) }

    @Test func badInputIsAnsweredAndAVanishedDebuggerIsDetached() throws {
        let path = "/tmp/swiftvmm-gdbstub-test-\(getpid()).sock"
        let target = FakeTarget()
        let server = try GDBServer(endpoint: .unix(path: path), target: target)
        try server.start()
        defer { server.stop() }

        let first = try connect(path)
        send(first, Array("$g#00".utf8))
        #expect(receive(first, until: "-").hasSuffix("-"), "a bad checksum is answered with -")
        send(first, packet("m7c00"))
        #expect(receive(first, until: "$E01#").contains("$E01#a6"), "a malformed packet is answered E01")
        send(first, packet("m0,ffffffff"))
        #expect(receive(first, until: "$E01#").contains("$E01#a6"), "a huge length is refused, not allocated")
        send(first, Array("$".utf8) + Array(repeating: UInt8(ascii: "A"), count: 0x5000) + Array("#00".utf8))
        #expect(receive(first, until: "-").hasSuffix("-"), "an oversized packet is dropped and answered with -")
        send(first, packet("vMustReplyEmpty"))
        #expect(receive(first, until: "$#00").contains("$#00"), "an unknown packet gets the empty reply")
        send(first, packet("c"))
        #expect(receive(first, until: "+") == "+", "the target runs: no reply but the ack")
        send(first, Array("$m7c00,".utf8))
        close(first)

        // The next debugger finds the stub serving, and the target was detached.
        let second = try connect(path)
        defer { close(second) }
        send(second, packet("?"))
        #expect(receive(second, until: "$T05").contains("T05thread:1;"))
        #expect(target.interrupts == 1, "the running target was stopped before the detach")
        #expect(target.detached)
    }
}
