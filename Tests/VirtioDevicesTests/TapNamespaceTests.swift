import Foundation
import GuestMemory
import HostSupport
import Testing
import VMCore
import Virtio

@testable import VirtioDevices

/// A network namespace of its own for one test, deleted at the end: the
/// tap lives there, so the host's own interfaces are never touched.
final class TestNetworkNamespace {
    let name: String

    /// Whether this host lets a test make one: root and `ip`.
    static var isAvailable: Bool { getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") }

    init(name: String) throws {
        self.name = name
        _ = try? Self.run(["netns", "del", name])
        try Self.run(["netns", "add", name])
    }

    deinit { _ = try? Self.run(["netns", "del", name]) }

    /// Runs `ip` with `arguments`; its standard output, or an error with its standard error.
    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let problem = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestFailure("ip \(arguments.joined(separator: " ")) failed: \(problem)")
        }
        return text
    }

    /// Opens tap `tap` inside the namespace, from a thread that enters it
    /// (a network namespace is per thread), so the test process stays where it was.
    func openTap(_ tap: String) throws -> TapDevice {
        let result = ThreadLock<Result<TapDevice, TestFailure>?>(nil)
        let path = "/var/run/netns/\(name)"
        let thread = try HostThread.spawn(name: "netns-tap") {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0, enterNetworkNamespace(fd) == 0 else {
                result.withLock { $0 = .failure(TestFailure("cannot enter \(path): errno \(errno)")) }
                return
            }
            close(fd)
            do {
                let device = try TapDevice(name: tap)
                result.withLock { $0 = .success(device) }
            } catch {
                result.withLock { $0 = .failure(TestFailure("\(error)")) }
            }
        }
        thread.join()
        guard let outcome = result.withLock({ $0 }) else { throw TestFailure("the namespace thread said nothing") }
        return try outcome.get()
    }
}

/// `setns(fd, CLONE_NEWNET)`: Glibc's module leaves `setns` out (it is a
/// `_GNU_SOURCE` declaration), so it is looked up at run time.
private func enterNetworkNamespace(_ fd: Int32) -> Int32 {
    typealias SetNamespace = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(nil, "setns") else { return -1 }
    return unsafeBitCast(symbol, to: SetNamespace.self)(fd, 0x4000_0000)
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The Internet checksum of `bytes`.
func internetChecksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var i = 0
    while i + 1 < bytes.count {
        sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
        i += 2
    }
    if i < bytes.count { sum += UInt32(bytes[i]) << 8 }
    while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
    return ~UInt16(sum)
}

/// An Ethernet frame carrying an ICMP echo request from `source` to `destination`.
func echoRequest(from mac: [UInt8], to destinationMAC: [UInt8], source: [UInt8], destination: [UInt8], identifier: UInt16)
    -> [UInt8]
{
    var icmp: [UInt8] = [8, 0, 0, 0, UInt8(identifier >> 8), UInt8(identifier & 0xff), 0, 1]
    icmp += (0..<32).map { UInt8($0) }
    let icmpSum = internetChecksum(icmp)
    icmp[2] = UInt8(icmpSum >> 8)
    icmp[3] = UInt8(icmpSum & 0xff)
    let total = 20 + icmp.count
    var ip: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 1, 0x40, 0, 64, 1, 0, 0] + source + destination
    let ipSum = internetChecksum(ip)
    ip[10] = UInt8(ipSum >> 8)
    ip[11] = UInt8(ipSum & 0xff)
    return destinationMAC + mac + [0x08, 0x00] + ip + icmp
}

@Suite("VirtioNetTap", .serialized)
struct TapNamespaceTests {
    @Test(
        .enabled(if: TestNetworkNamespace.isAvailable, "SKIPPED: needs root and ip(8) to make a network namespace with a tap"))
    func aPingFromTheGuestIsAnsweredThroughARealTap() throws {
        let namespace = try TestNetworkNamespace(name: "svmm-net-\(getpid())")
        let tapName = "svmmtap0"
        let tap = try namespace.openTap(tapName)
        #expect(tap.supportedOffloads.contains(.checksum))
        let mac = MACAddress("52:54:00:00:77:02")!
        for command in [
            ["addr", "add", "10.77.0.1/24", "dev", tapName], ["link", "set", tapName, "up"],
            ["neigh", "add", "10.77.0.2", "lladdr", mac.description, "dev", tapName, "nud", "permanent"],
        ] {
            try TestNetworkNamespace.run(["-n", namespace.name] + command)
        }
        let hostMACText = try TestNetworkNamespace.run(["netns", "exec", namespace.name, "cat", "/sys/class/net/\(tapName)/address"])
        let hostMAC = try #require(MACAddress(hostMACText.trimmingCharacters(in: .whitespacesAndNewlines)))

        let loop = try EventLoopBox()
        let net = VirtioNet(tap: tap, mac: mac)
        let driver = try TestDriver(device: net, eventLoop: loop)
        driver.start(features: VirtioNet.Feature.mac.rawValue | VirtioNet.Feature.status.rawValue)
        var buffers: [UInt16: UInt64] = [:]
        for _ in 0..<8 {
            let added = driver.add(queue: 0, [.writable(2048)])
            buffers[added.head] = added.writable[0]
        }
        driver.notify(0)
        let request = echoRequest(
            from: mac.bytes, to: hostMAC.bytes, source: [10, 77, 0, 2], destination: [10, 77, 0, 1], identifier: 0x5356)
        driver.add(queue: 1, [.readable([UInt8](repeating: 0, count: 12) + request)])
        driver.notify(1)
        #expect(net.statistics.framesSent == 1)

        // The kernel answers (its IPv6 chatter on the new link may come too).
        var reply: [UInt8]?
        let found = try waitUntil {
            for used in driver.used(queue: 0) {
                guard let address = buffers[used.head], used.length >= 12 + 42 else { continue }
                let frame = try driver.memory.read(count: Int(used.length) - 12, at: GuestAddress(address + 12))
                // IPv4, ICMP, echo reply, our identifier.
                if frame[12] == 0x08, frame[13] == 0, frame[23] == 1, frame[34] == 0, frame[38] == 0x53, frame[39] == 0x56 {
                    reply = frame
                }
            }
            return reply != nil
        }
        #expect(found, "no echo reply from the tap; counters: \(net.statistics)")
        if let reply {
            #expect(Array(reply[0..<6]) == mac.bytes)
            #expect(Array(reply[6..<12]) == hostMAC.bytes)
            #expect(Array(reply[26..<30]) == [10, 77, 0, 1])
            #expect(Array(reply[42...]) == (0..<32).map { UInt8($0) })
        }
        driver.driver.write(0x070, 0)
    }

    @Test func aTapThatCannotBeOpenedSaysWhy() {
        #expect(throws: TapError.self) { try TapDevice(name: "a-name-far-too-long") }
        #expect("\(TapError(name: "t", operation: "TUNSETIFF", errno: EPERM))".contains("CAP_NET_ADMIN"))
    }
}
