import Foundation
import GuestMemory
import HostSupport
import Testing
import VMCore
import Virtio

@testable import VirtioDevices

/// Polls `condition` every millisecond for up to `seconds`.
func waitUntil(seconds: Double = 5, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        usleep(1000)
    }
    return try condition()
}

/// A datagram socket pair standing in for a tap: frames keep their bounds.
final class SocketPair {
    let device: Int32
    let host: Int32
    init() throws {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0 else {
            throw POSIXError(.EIO)
        }
        device = fds[0]
        host = fds[1]
    }
    deinit {
        close(device)
        close(host)
    }

    func send(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { Glibc.send(host, $0.baseAddress, $0.count, 0) } }

    func receive() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 70_000)
        let count = buffer.withUnsafeMutableBytes { recv(host, $0.baseAddress, $0.count, 0) }
        return count < 0 ? nil : Array(buffer[0..<count])
    }
}

@Suite("VirtioNet")
struct VirtioNetTests {
    static let macAndStatus = VirtioNet.Feature.mac.rawValue | VirtioNet.Feature.status.rawValue

    /// A card on a socket pair, with the offloads a tap would have accepted, and what the tap was told.
    static func make(offloads: TapDevice.Offloads = [], mac: MACAddress? = nil) throws -> (
        VirtioNet, SocketPair, ThreadLock<[TapDevice.Offloads]>
    ) {
        let pair = try SocketPair()
        let told = ThreadLock<[TapDevice.Offloads]>([])
        let net = VirtioNet(
            tap: nil, fileDescriptor: pair.device, supportedOffloads: offloads,
            setOffloads: { offloads in told.withLock { $0.append(offloads) } },
            name: "tap-test", mac: mac)
        return (net, pair, told)
    }

    static func frame(_ length: Int, seed: UInt8) -> [UInt8] {
        [UInt8](repeating: 0, count: 12) + (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7) &+ seed }
    }

    @Test func macAddressesParseAndDeriveLocallyAdministeredOnes() {
        #expect(MACAddress("52:54:00:12:34:56")?.bytes == [0x52, 0x54, 0, 0x12, 0x34, 0x56])
        #expect(MACAddress("52-54-00-AB-cd-EF")?.description == "52:54:00:ab:cd:ef")
        #expect(MACAddress("01:00:5e:00:00:01") == nil)  // multicast
        #expect(MACAddress("52:54:00:12:34") == nil)
        #expect(MACAddress("52:54:00:12:34:5g") == nil)
        let derived = MACAddress(derivedFrom: "tap0")
        #expect(derived == MACAddress(derivedFrom: "tap0"))
        #expect(derived != MACAddress(derivedFrom: "tap1"))
        #expect(derived.bytes[0] & 3 == 2)
    }

    @Test func offersOnlyTheOffloadsTheTapAcceptedAndTellsTheTapWhatTheDriverTook() throws {
        let mac = MACAddress("52:54:00:12:34:56")!
        let (net, _, told) = try Self.make(offloads: [.checksum, .tcp4Segmentation], mac: mac)
        let driver = try TestDriver(device: net)
        let offered = driver.offered
        for bit in [0, 1, 5, 7, 11, 16] { #expect(offered & (1 << UInt64(bit)) != 0, "bit \(bit)") }
        for bit in [8, 10, 12, 14, 15] { #expect(offered & (1 << UInt64(bit)) == 0, "bit \(bit)") }
        #expect((0..<6).map { UInt8(driver.configuration(UInt64($0), size: 1)) } == mac.bytes)
        #expect(driver.configuration(6, size: 2) == 1)  // link up
        driver.start(features: Self.macAndStatus | (1 << 1) | (1 << 7))
        #expect(driver.status.contains(.driverOK))
        #expect(told.withLock { $0 } == [[.checksum, .tcp4Segmentation]])
        driver.driver.write(0x070, 0)
        #expect(told.withLock { $0.last } == [])
        #expect(try Self.make(offloads: []).0.features.rawValue & 0x7fff == 1 << 5)
    }

    @Test func framesGoBothWaysAndWaitForReceiveBuffers() throws {
        let loop = try EventLoopBox()
        let (net, pair, _) = try Self.make()
        let driver = try TestDriver(device: net, eventLoop: loop)
        driver.start(features: Self.macAndStatus)
        // Transmit: header and frame, in two buffers, arrive as one datagram.
        let outgoing = Self.frame(60, seed: 1)
        let sent = driver.add(queue: 1, [.readable(Array(outgoing[0..<20])), .readable(Array(outgoing[20...]))])
        driver.notify(1)
        #expect(driver.used(queue: 1) == [.init(head: sent.head, length: 0)])
        #expect(pair.receive() == outgoing)
        // A frame before the guest has buffers waits in the socket.
        let incoming = Self.frame(100, seed: 9)
        pair.send(incoming)
        usleep(20_000)
        #expect(driver.used(queue: 0).isEmpty)
        let buffer = driver.add(queue: 0, [.writable(40), .writable(2000)])
        driver.notify(0)
        var used: [TestDriver.Used] = []
        #expect(
            waitUntil {
                used += driver.used(queue: 0); return !used.isEmpty
            })
        #expect(used == [.init(head: buffer.head, length: UInt32(incoming.count))])
        var expected = incoming
        expected[10] = 1  // num_buffers
        let received =
            try driver.memory.read(count: 40, at: GuestAddress(buffer.writable[0]))
            + driver.memory.read(count: incoming.count - 40, at: GuestAddress(buffer.writable[1]))
        #expect(received == expected)
        // A second frame now goes straight in, when a buffer is there.
        let second = driver.add(queue: 0, [.writable(2048)])
        driver.notify(0)
        pair.send(Self.frame(64, seed: 3))
        #expect(waitUntil { driver.used(queue: 0) == [.init(head: second.head, length: 76)] })
        let counters = net.statistics
        #expect(counters.framesSent == 1 && counters.framesReceived == 2 && counters.bytesReceived == 164)
        #expect(driver.status.contains(.driverOK) && !driver.status.contains(.needsReset))
    }

    @Test func brokenChainsNeedAResetAndOversizedFramesAreDropped() throws {
        let (net, pair, _) = try Self.make()
        let driver = try TestDriver(device: net)
        driver.start(features: Self.macAndStatus)
        // Too big: dropped, the buffer comes back.
        let big = driver.add(queue: 1, [.readable([UInt8](repeating: 0, count: 12 + 65_551))])
        driver.notify(1)
        #expect(driver.used(queue: 1) == [.init(head: big.head, length: 0)])
        #expect(net.statistics.sendDropped == 1)
        #expect(pair.receive() == nil)
        // No room for the header.
        driver.add(queue: 1, [.readable([1, 2, 3, 4])])
        driver.notify(1)
        #expect(driver.status.contains(.needsReset))
        #expect(driver.errors.withLock { $0.last?.contains("header is missing") == true })

        let (other, otherPair, _) = try Self.make()
        let second = try TestDriver(device: other)
        second.start(features: Self.macAndStatus)
        otherPair.send(Self.frame(60, seed: 0))
        second.add(queue: 0, [.writable(8)])
        second.notify(0)
        #expect(second.status.contains(.needsReset))
    }
}
