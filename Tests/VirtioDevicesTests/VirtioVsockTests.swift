import Foundation
import GuestMemory
import HostSupport
import Testing
import VMCore
import Virtio

@testable import VirtioDevices

/// The guest side of vsock in tests: rx buffers, packets in and out.
final class VsockGuest {
    let driver: TestDriver
    let cid: UInt64
    private var receiveBuffers: [UInt16: UInt64] = [:]

    init(device: VirtioVsock, loop: EventLoopBox) throws {
        driver = try TestDriver(device: device, eventLoop: loop)
        cid = device.cid
        driver.start(features: 0)
        try addReceiveBuffers(8)
    }

    func addReceiveBuffers(_ count: Int) throws {
        for _ in 0..<count {
            let added = driver.add(queue: 0, [.writable(44 + 4096)])
            receiveBuffers[added.head] = added.writable[0]
        }
        driver.notify(0)
    }

    /// Sends a packet from guest port `from` to host port `to`.
    func send(
        _ operation: VsockPacketHeader.Operation, from: UInt32, to: UInt32, payload: [UInt8] = [], bufferAllocation: UInt32 = 65536,
        forwardCount: UInt32 = 0, flags: UInt32 = 0, sourceCID: UInt64? = nil
    ) throws {
        var header = VsockPacketHeader()
        header.sourceCID = sourceCID ?? cid
        header.destinationCID = 2
        header.sourcePort = from
        header.destinationPort = to
        header.operation = operation.rawValue
        header.length = UInt32(payload.count)
        header.bufferAllocation = bufferAllocation
        header.forwardCount = forwardCount
        header.flags = flags
        if payload.isEmpty {
            driver.add(queue: 1, [.readable(header.bytes)])
        } else {
            driver.add(queue: 1, [.readable(header.bytes), .readable(payload)])
        }
        driver.notify(1)
    }

    /// The packets the device put in rx buffers since the last call, waiting up to a few seconds for `count`.
    func receive(_ count: Int = 1, seconds: Double = 5) throws -> [(VsockPacketHeader, [UInt8])] {
        var packets: [(VsockPacketHeader, [UInt8])] = []
        _ = try waitUntil(seconds: seconds) {
            for used in driver.used(queue: 0) {
                guard let address = receiveBuffers.removeValue(forKey: used.head) else { throw TestFailure("unknown rx head \(used.head)") }
                let bytes = try driver.memory.read(count: Int(used.length), at: GuestAddress(address))
                let header = VsockPacketHeader(bytes: bytes)
                packets.append((header, Array(bytes[44...])))
                try addReceiveBuffers(1)
            }
            return packets.count >= count
        }
        return packets
    }
}

/// A blocking Unix socket client with a receive timeout.
final class UnixClient {
    let fd: Int32
    init(path: String) throws {
        fd = try UnixSocket.connect(path: path)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }
    init(fd: Int32) {
        self.fd = fd
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }
    deinit { close(fd) }

    func send(_ text: String) { _ = Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }

    /// Reads until `count` bytes came or the timeout.
    func receive(_ count: Int) -> String {
        var bytes: [UInt8] = []
        while bytes.count < count {
            var buffer = [UInt8](repeating: 0, count: count - bytes.count)
            let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if got <= 0 { break }
            bytes += buffer[0..<got]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

@Suite("VirtioVsock")
struct VirtioVsockTests {
    static func temporaryPath() -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("svmm-vsock-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent("v.sock").path
    }

    @Test func cidsBelowThreeAndDuplicatesAreRefused() throws {
        let path = Self.temporaryPath()
        #expect(throws: VsockError.reservedCID(2)) { try VirtioVsock(cid: 2, socketPath: path) }
        var first: VirtioVsock? = try VirtioVsock(cid: 901, socketPath: path)
        #expect(throws: VsockError.duplicateCID(901)) { try VirtioVsock(cid: 901, socketPath: path + "2") }
        #expect("\(VsockError.duplicateCID(901))" == "vsock cid 901 is already used by another vsock device")
        #expect(first?.configuration == LittleEndian.bytes(UInt64(901)))
        first = nil
        #expect(try VirtioVsock(cid: 901, socketPath: path).cid == 901)
        #expect(throws: VsockError.self) { try VirtioVsock(cid: 902, socketPath: "/nonexistent-dir/v.sock") }
    }

    @Test func aHostClientConnectsToAGuestPortAndBytesFlowBothWays() throws {
        let loop = try EventLoopBox()
        let path = Self.temporaryPath()
        let vsock = try VirtioVsock(cid: 903, socketPath: path)
        let guest = try VsockGuest(device: vsock, loop: loop)
        let client = try UnixClient(path: path)
        client.send("CONNECT 5000\n")
        let request = try #require(try guest.receive().first?.0)
        #expect(request.operation == VsockPacketHeader.Operation.request.rawValue)
        #expect(request.sourceCID == 2 && request.destinationCID == 903 && request.destinationPort == 5000)
        #expect(request.sourcePort >= 1 << 30)
        let hostPort = request.sourcePort
        try guest.send(.response, from: 5000, to: hostPort)
        #expect(client.receive("OK \(hostPort)\n".utf8.count) == "OK \(hostPort)\n")

        client.send("hello")
        let data = try #require(try guest.receive().first)
        #expect(data.0.operation == VsockPacketHeader.Operation.readWrite.rawValue)
        #expect(data.0.length == 5 && data.1 == Array("hello".utf8))
        #expect(data.0.sourcePort == hostPort && data.0.destinationPort == 5000)

        try guest.send(.readWrite, from: 5000, to: hostPort, payload: Array("world".utf8))
        #expect(client.receive(5) == "world")
        // The device counts the guest's 5 bytes as forwarded, not its own OK line.
        try guest.send(.creditRequest, from: 5000, to: hostPort)
        let update = try #require(try guest.receive().first?.0)
        #expect(update.operation == VsockPacketHeader.Operation.creditUpdate.rawValue)
        #expect(update.forwardCount == 5 && update.bufferAllocation == VirtioVsock.bufferSize)

        // The host program leaves: the guest hears a full shutdown and resets.
        close(client.fd)
        let shutdown = try #require(try guest.receive().first?.0)
        #expect(shutdown.operation == VsockPacketHeader.Operation.shutdown.rawValue && shutdown.flags == 3)
        try guest.send(.reset, from: 5000, to: hostPort)
        #expect(vsock.connectionCount == 0)
        #expect(guest.driver.status.contains(.driverOK) && !guest.driver.status.contains(.needsReset))
    }

    @Test func aHostHalfCloseLetsTheGuestGoOnSending() throws {
        let loop = try EventLoopBox()
        let path = Self.temporaryPath()
        let vsock = try VirtioVsock(cid: 912, socketPath: path)
        let guest = try VsockGuest(device: vsock, loop: loop)
        let client = try UnixClient(path: path)
        client.send("CONNECT 5000\n")
        let hostPort = try #require(try guest.receive().first?.0).sourcePort
        try guest.send(.response, from: 5000, to: hostPort)
        #expect(client.receive("OK \(hostPort)\n".utf8.count) == "OK \(hostPort)\n")
        client.send("request")
        #expect(try guest.receive().first?.1 == Array("request".utf8))

        // The host is done sending (SHUT_WR) but waits for the answer: the
        // guest hears "no more data" only, and its answer still reaches the host.
        shutdown(client.fd, Int32(SHUT_WR))
        let halfClose = try #require(try guest.receive().first?.0)
        #expect(halfClose.operation == VsockPacketHeader.Operation.shutdown.rawValue)
        #expect(halfClose.flags == VsockPacketHeader.shutdownSend)
        try guest.send(.readWrite, from: 5000, to: hostPort, payload: Array("answer".utf8))
        #expect(client.receive(6) == "answer")
        #expect(vsock.connectionCount == 1)
        // The guest closes too: a reset ends it and the host reads the end.
        try guest.send(.shutdown, from: 5000, to: hostPort, flags: 3)
        #expect(try guest.receive().first?.0.operation == VsockPacketHeader.Operation.reset.rawValue)
        #expect(client.receive(1) == "")
        #expect(vsock.connectionCount == 0)
    }

    @Test func aGuestConnectsToTheHostPortSocketWithinItsCredit() throws {
        let loop = try EventLoopBox()
        let path = Self.temporaryPath()
        let vsock = try VirtioVsock(cid: 904, socketPath: path)
        let guest = try VsockGuest(device: vsock, loop: loop)
        let listener = try UnixSocket.listen(path: path + "_6000")
        defer { close(listener) }

        // Nobody listens on port 6001: a reset.
        try guest.send(.request, from: 1234, to: 6001)
        let refused = try #require(try guest.receive().first?.0)
        #expect(refused.operation == VsockPacketHeader.Operation.reset.rawValue && refused.destinationPort == 1234)

        // The guest has room for 4 bytes.
        try guest.send(.request, from: 1234, to: 6000, bufferAllocation: 4)
        let response = try #require(try guest.receive().first?.0)
        #expect(response.operation == VsockPacketHeader.Operation.response.rawValue)
        #expect(response.sourcePort == 6000 && response.destinationPort == 1234)
        #expect(response.bufferAllocation == VirtioVsock.bufferSize)
        var accepted: Int32?
        #expect(
            waitUntil {
                accepted = UnixSocket.accept(listener); return accepted != nil
            })
        let server = UnixClient(fd: try #require(accepted))

        try guest.send(.readWrite, from: 1234, to: 6000, payload: Array("ping".utf8), bufferAllocation: 4)
        #expect(server.receive(4) == "ping")
        server.send("abcdefghij")
        let first = try guest.receive()
        #expect(first.map { String(decoding: $0.1, as: UTF8.self) } == ["abcd"])
        #expect(try guest.receive(seconds: 0.1).isEmpty)
        // The guest consumed 4 bytes: 4 more may come.
        try guest.send(.creditUpdate, from: 1234, to: 6000, bufferAllocation: 4, forwardCount: 4)
        let second = try guest.receive()
        #expect(second.map { String(decoding: $0.1, as: UTF8.self) } == ["efgh"])
        #expect(second.first?.0.forwardCount == 4)
        // A credit request is answered with the device's counts.
        try guest.send(.creditRequest, from: 1234, to: 6000, bufferAllocation: 4, forwardCount: 4)
        let update = try #require(try guest.receive().first?.0)
        #expect(update.operation == VsockPacketHeader.Operation.creditUpdate.rawValue && update.forwardCount == 4)
        // Full shutdown from the guest: the device resets the stream and the host socket ends.
        try guest.send(.shutdown, from: 1234, to: 6000, bufferAllocation: 4, forwardCount: 4, flags: 3)
        let reset = try #require(try guest.receive().first?.0)
        #expect(reset.operation == VsockPacketHeader.Operation.reset.rawValue)
        #expect(server.receive(1) == "")
        #expect(vsock.connectionCount == 0)
    }

    @Test func aHostProgramThatDoesNotAcceptRefusesTheGuestWithoutStallingTheDevice() throws {
        let loop = try EventLoopBox()
        let path = Self.temporaryPath()
        let vsock = try VirtioVsock(cid: 911, socketPath: path)
        let guest = try VsockGuest(device: vsock, loop: loop)
        // A listener that never accepts, its backlog filled by other clients.
        let listener = try UnixSocket.listen(path: path + "_7000", backlog: 0)
        var waiting: [Int32] = []
        defer {
            for fd in waiting { close(fd) }
            close(listener)
        }
        while waiting.count < 16, let fd = try? UnixSocket.connect(path: path + "_7000", nonBlocking: true) { waiting.append(fd) }
        #expect(waiting.count < 16, "the backlog never filled up")

        try guest.send(.request, from: 1234, to: 7000)
        let refused = try #require(try guest.receive().first?.0)
        #expect(refused.operation == VsockPacketHeader.Operation.reset.rawValue && refused.destinationPort == 1234)
        #expect(vsock.connectionCount == 0)
    }

    @Test func aHostClientWhoseGuestNeverAnswersIsClosedAfterTwoSeconds() throws {
        let loop = try EventLoopBox()
        let path = Self.temporaryPath()
        let vsock = try VirtioVsock(cid: 908, socketPath: path)
        let guest = try VsockGuest(device: vsock, loop: loop)
        let client = try UnixClient(path: path)
        client.send("CONNECT 7000\n")
        let request = try #require(try guest.receive().first?.0)
        #expect(request.operation == VsockPacketHeader.Operation.request.rawValue)
        let start = ContinuousClock.now
        #expect(client.receive(1) == "")
        #expect(ContinuousClock.now - start >= .milliseconds(1500))
        let reset = try #require(try guest.receive().first?.0)
        #expect(reset.operation == VsockPacketHeader.Operation.reset.rawValue && reset.destinationPort == 7000)
        // A line that is not CONNECT gets an error and the door.
        let stranger = try UnixClient(path: path)
        stranger.send("HELLO\n")
        #expect(stranger.receive(64) == "ERROR expected CONNECT <port>\n")
        #expect(vsock.connectionCount == 0)
    }

    @Test func badPacketsAreDroppedResetOrNeedAReset() throws {
        let loop = try EventLoopBox()
        let vsock = try VirtioVsock(cid: 905, socketPath: Self.temporaryPath())
        let guest = try VsockGuest(device: vsock, loop: loop)
        // Not from this guest's CID: dropped without a word.
        try guest.send(.request, from: 1, to: 2, sourceCID: 77)
        #expect(try guest.receive(seconds: 0.05).isEmpty)
        #expect(vsock.droppedPackets == 1)
        // Data for a connection that does not exist: a reset.
        try guest.send(.readWrite, from: 1, to: 2, payload: [1])
        #expect(try guest.receive().first?.0.operation == VsockPacketHeader.Operation.reset.rawValue)
        // A header that lies about its payload.
        var header = VsockPacketHeader()
        header.sourceCID = 905
        header.destinationCID = 2
        header.length = 1000
        guest.driver.add(queue: 1, [.readable(header.bytes + [1, 2, 3])])
        guest.driver.notify(1)
        #expect(guest.driver.status.contains(.needsReset))
        #expect(guest.driver.errors.withLock { $0.last?.contains("1000 payload bytes") == true })
    }

    @Test func aRestoredDeviceTellsTheGuestItsConnectionsWereReset() throws {
        let loop = try EventLoopBox()
        let vsock = try VirtioVsock(cid: 906, socketPath: Self.temporaryPath())
        let guest = try VsockGuest(device: vsock, loop: loop)
        let event = guest.driver.add(queue: 2, [.writable(4)])
        guest.driver.notify(2)
        #expect(guest.driver.used(queue: 2).isEmpty)
        let saved = guest.driver.transport.state
        try vsock.restore(vsock.state)
        try guest.driver.transport.restore(saved)
        #expect(guest.driver.used(queue: 2) == [.init(head: event.head, length: 4)])
        #expect(try guest.driver.memory.read(count: 4, at: GuestAddress(event.writable[0])) == [0, 0, 0, 0])
        let other = try VirtioVsock(cid: 907, socketPath: Self.temporaryPath())
        #expect(throws: (any Error).self) { try other.restore(vsock.state) }
    }
}
