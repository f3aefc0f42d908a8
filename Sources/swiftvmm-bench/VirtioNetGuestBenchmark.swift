import Devices
import Firmware
import Foundation
import GuestMemory
import SwiftVMM
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// virtio-net end to end, from the guest's own driver
/// (`firmware/longmode/virtio-net-bench.c`, its loops in 64-bit ring 3) over a real
/// tap in a network namespace of its own: frames per second and MB/s the
/// guest transmits (64 and 1514 bytes; the tap's own counters confirm them)
/// and receives (the host sends with an `AF_PACKET` socket on the tap to the
/// guest's MAC as fast as it can for a while; what the tap could not hand on
/// is dropped, so the guest's count over its own first-to-last time is the
/// rate), and VM exits per frame each way.
enum VirtioNetGuestBenchmark {
    /// Each COM1 line with the host time and the machine's exit count when it
    /// ended; read by the host-side thread while the vCPU writes.
    final class Lines: SerialOutput, @unchecked Sendable {
        struct Line {
            var text: String
            var nanoseconds: UInt64
            var exits: Int
        }
        private let lock = NSLock()
        private var lines: [Line] = []
        private var current: [UInt8] = []
        weak var machine: Machine?

        func write(_ byte: UInt8) {
            guard byte == 0x0a else {
                current.append(byte)
                return
            }
            let line = Line(
                text: String(decoding: current, as: UTF8.self), nanoseconds: monotonicNanoseconds(), exits: machine?.exitCount ?? 0)
            current = []
            lock.lock()
            lines.append(line)
            lock.unlock()
        }

        func flush() {}

        var all: [Line] {
            lock.lock()
            defer { lock.unlock() }
            return lines
        }

        /// The first line starting with `prefix` after the first `after` lines, waiting up to `seconds`.
        func wait(for prefix: String, after: Int = 0, seconds: Double) -> (index: Int, line: Line)? {
            let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
            repeat {
                let snapshot = all
                if after < snapshot.count, let index = snapshot[after...].firstIndex(where: { $0.text.hasPrefix(prefix) }) {
                    return (index, snapshot[index])
                }
                usleep(1000)
            } while monotonicNanoseconds() < deadline
            return nil
        }
    }

    static let tap = "svmmnb0"
    static let guestMAC: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]

    static func run(frames: Int, receiveSeconds: Double) {
        print(
            "virtio-net from the guest's own driver (ring 3, polling, event-idx) over a tap in a network namespace, "
                + "\(frames) frames per transmit phase, \(receiveSeconds) s of host sending per receive phase:")
        guard getuid() == 0,
            let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"].first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else {
            print("  SKIPPED: needs root and ip(8) for a network namespace and a tap")
            return
        }
        let namespace = "svmm-nb-\(getpid())"
        func ipCommand(_ arguments: [String]) {
            guard let run = spawnAndWait([ip] + arguments), exitStatus(run.status) == 0 else {
                fail("virtio-net guest benchmark: ip \(arguments.joined(separator: " ")) failed")
            }
        }
        ipCommand(["netns", "add", namespace])
        defer { _ = spawnAndWait([ip, "netns", "del", namespace]) }
        for step in [
            ["link", "set", "lo", "up"], ["tuntap", "add", "dev", tap, "mode", "tap"], ["link", "set", tap, "up"],
        ] {
            ipCommand(["-n", namespace] + step)
        }
        // This thread (and the host-side thread it starts) moves into the
        // namespace, so the machine opens the tap there; back at the end.
        let home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        let target = open("/var/run/netns/\(namespace)", O_RDONLY | O_CLOEXEC)
        guard home >= 0, target >= 0, enterNetworkNamespace(target) == 0 else {
            fail("virtio-net guest benchmark: cannot enter the namespace \(namespace): errno \(errno)")
        }
        close(target)
        // No IPv6 chatter from the host's kernel on the tap (net sysctls are this thread's namespace's).
        try? "1".write(toFile: "/proc/sys/net/ipv6/conf/\(tap)/disable_ipv6", atomically: false, encoding: .utf8)
        defer {
            _ = enterNetworkNamespace(home)
            close(home)
        }
        let sender = PacketSender(interface: tap)

        let output = Lines()
        var configuration = MachineConfiguration(
            guest: .firmware(FirmwareImage.longVirtioNetBench), memorySize: 64 << 20, serialOutput: output)
        configuration.virtioDevices = [.network(.init(tap: tap, mac: guestMAC))]
        let machine: Machine
        do {
            machine = try Machine(configuration)
        } catch { fail("virtio-net guest benchmark: \(error)") }
        output.machine = machine
        // The guest's parameters (it has no command line): frames per transmit phase, receive phases.
        do {
            try machine.memory.writeInteger(UInt32(frames), at: GuestAddress(0x50_0000))
            try machine.memory.writeInteger(UInt32(2), at: GuestAddress(0x50_0004))
        } catch { fail("virtio-net guest benchmark: \(error)") }

        let host = HostSide(output: output, sender: sender, seconds: receiveSeconds)
        let thread = Thread { host.run() }
        thread.start()
        do {
            let reason = try machine.run(timeout: .seconds(600))
            guard reason == .debugExit(status: 0) else {
                fail("virtio-net guest benchmark: the guest stopped with \(reason): \(output.all.map(\.text).joined(separator: "\n"))")
            }
        } catch { fail("virtio-net guest benchmark: \(error)") }
        host.finished.wait()
        report(output.all, host: host, frames: frames)
    }

    /// What the host side did in each receive phase.
    struct ReceivePhase {
        var size: Int
        var sent: Int
        var refused: Int
        var delivered: Int
        var dropped: Int
    }

    /// The host's half: waits for the guest's `rx ready`, then per phase sends
    /// for `seconds`, waits for the tap to drain, and ends the phase.
    final class HostSide: @unchecked Sendable {
        let output: Lines
        let sender: PacketSender
        let seconds: Double
        let finished = DispatchSemaphore(value: 0)
        var phases: [ReceivePhase] = []
        var transmitted: (packets: Int, bytes: Int) = (0, 0)
        var problem: String?

        init(output: Lines, sender: PacketSender, seconds: Double) {
            self.output = output
            self.sender = sender
            self.seconds = seconds
        }

        func run() {
            defer { finished.signal() }
            let before = tapCounters(VirtioNetGuestBenchmark.tap)
            guard let ready = output.wait(for: "netbench: rx ready", seconds: 300) else {
                problem = "the guest never said 'rx ready'"
                return
            }
            let afterTransmit = tapCounters(VirtioNetGuestBenchmark.tap)
            transmitted = (afterTransmit.rxPackets - before.rxPackets, afterTransmit.rxBytes - before.rxBytes)
            var seen = ready.index + 1
            for size in [64, 1514] {
                let start = tapCounters(VirtioNetGuestBenchmark.tap)
                let frame =
                    VirtioNetGuestBenchmark.guestMAC + [0x02, 0, 0, 0, 0, 2, 0x88, 0xb5] + (14..<size).map { UInt8(truncatingIfNeeded: $0) }
                let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
                var sent = 0
                var refused = 0
                while monotonicNanoseconds() < deadline {
                    for _ in 0..<64 {
                        if sender.send(frame) { sent += 1 } else { refused += 1 }
                    }
                }
                // Drained: the tap's transmit count stops moving for 200 ms.
                var last = tapCounters(VirtioNetGuestBenchmark.tap)
                var stable = monotonicNanoseconds()
                while monotonicNanoseconds() - stable < 200_000_000 {
                    usleep(10_000)
                    let now = tapCounters(VirtioNetGuestBenchmark.tap)
                    if now.txPackets != last.txPackets {
                        last = now
                        stable = monotonicNanoseconds()
                    }
                }
                let end = VirtioNetGuestBenchmark.guestMAC + [0x02, 0, 0, 0, 0, 2, 0x88, 0xb6] + [UInt8](repeating: 0, count: 46)
                var result: (index: Int, line: Lines.Line)?
                for _ in 0..<5 where result == nil {
                    _ = sender.send(end)
                    result = output.wait(for: "netbench: rx ", after: seen, seconds: 2)
                }
                guard let result else {
                    problem = "no result for the \(size)-byte receive phase"
                    return
                }
                seen = result.index + 1
                phases.append(
                    ReceivePhase(
                        size: size, sent: sent, refused: refused, delivered: last.txPackets - start.txPackets,
                        dropped: last.txDropped - start.txDropped))
            }
        }
    }

    static func report(_ lines: [Lines.Line], host: HostSide, frames: Int) {
        if let problem = host.problem { fail("virtio-net guest benchmark: \(problem): \(lines.map(\.text))") }
        if ProcessInfo.processInfo.environment["SWIFTVMM_BENCH_GUEST_LINES"] != nil {
            for line in lines { print("  guest: \(line.text)") }
        }
        func numbers(_ text: String) -> (frames: Double, bytes: Double, kcycles: Double) {
            let words = text.split(separator: " ")
            func before(_ word: String) -> Double {
                words.firstIndex(where: { $0 == word || $0 == "K" + word }).flatMap { Double(words[$0 - 1].filter(\.isNumber)) } ?? 0
            }
            let kilo = words.contains("bytes") && text.contains("K bytes")
            return (before("frames"), before("bytes") * (kilo ? 1024 : 1), before("Kcycles"))
        }
        // The TSC rate, from the transmit phases: the guest's cycles against the host's clock.
        var cyclesPerSecond = 0.0
        var transmit: [(size: Int, frames: Double, bytes: Double, seconds: Double, exits: Int)] = []
        for size in [64, 1514] {
            guard let begin = lines.first(where: { $0.text == "netbench: tx \(size) start" }),
                let end = lines.first(where: { $0.text.hasPrefix("netbench: tx \(size) ") && $0.text.contains(" frames ") })
            else { fail("virtio-net guest benchmark: no tx \(size) result in \(lines.map(\.text))") }
            let figures = numbers(end.text)
            let seconds = Double(end.nanoseconds - begin.nanoseconds) / 1e9
            cyclesPerSecond = max(cyclesPerSecond, figures.kcycles * 1024 / seconds)
            // The result line itself is COM1 output: its exits are not the frames'.
            transmit.append((size, figures.frames, figures.bytes, seconds, max(0, end.exits - begin.exits - end.text.utf8.count - 1)))
        }
        for phase in transmit {
            print(
                String(
                    format: "  guest -> host, %4d-byte frames: %.0f frames/s, %.1f MB/s; %.4f VM exits per frame (%d exits, %d frames)",
                    phase.size, phase.frames / phase.seconds, phase.bytes / phase.seconds / 1e6, Double(phase.exits) / max(1, phase.frames),
                    phase.exits, Int(phase.frames)))
        }
        print(
            "  the tap received \(host.transmitted.packets) frames, \(host.transmitted.bytes) bytes from the guest (expected \(2 * frames) frames, \(frames * (64 + 1514)) bytes)"
        )
        let received = lines.filter { $0.text.hasPrefix("netbench: rx ") && $0.text.contains(" frames ") }
        guard let ready = lines.firstIndex(where: { $0.text == "netbench: rx ready" }), received.count == host.phases.count else {
            fail("virtio-net guest benchmark: receive results missing: \(lines.map(\.text))")
        }
        var previous = lines[ready]
        for (line, phase) in zip(received, host.phases) {
            let figures = numbers(line.text)
            let seconds = figures.kcycles * 1024 / max(1, cyclesPerSecond)
            let exits = max(0, line.exits - previous.exits - line.text.utf8.count - 1)
            print(
                String(
                    format:
                        "  host -> guest, %4d-byte frames: %.0f frames/s, %.1f MB/s; %.4f VM exits per frame (%d exits, %d frames; the tap handed on %d and dropped %d, %d sends accepted, %d refused)",
                    phase.size, figures.frames / seconds, figures.bytes / seconds / 1e6, Double(exits) / max(1, figures.frames), exits,
                    Int(figures.frames), phase.delivered, phase.dropped, phase.sent, phase.refused))
            previous = line
        }
        print(String(format: "  (guest TSC %.2f GHz, from the transmit phases against the host's clock)", cyclesPerSecond / 1e9))
    }

    /// The tap's counters from `/proc/thread-self/net/dev` (this thread's namespace):
    /// rx is what the VMM wrote (the guest's frames), tx what it read.
    static func tapCounters(_ name: String) -> (rxBytes: Int, rxPackets: Int, txBytes: Int, txPackets: Int, txDropped: Int) {
        let text = (try? String(contentsOfFile: "/proc/thread-self/net/dev", encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name else { continue }
            let fields = parts[1].split(separator: " ").compactMap { Int($0) }
            guard fields.count >= 12 else { break }
            return (fields[0], fields[1], fields[8], fields[9], fields[11])
        }
        return (0, 0, 0, 0, 0)
    }

    /// An `AF_PACKET` socket bound to one interface, writing whole Ethernet frames.
    final class PacketSender: @unchecked Sendable {
        let fd: Int32

        init(interface: String) {
            // Protocol 0: it sends only, and no frame is ever queued on it.
            fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            let index = if_nametoindex(interface)
            guard fd >= 0, index > 0 else { fail("virtio-net guest benchmark: no packet socket on \(interface): errno \(errno)") }
            // Past the qdisc, straight to the tap (PACKET_QDISC_BYPASS).
            var one: Int32 = 1
            _ = setsockopt(fd, 263, 20, &one, socklen_t(MemoryLayout<Int32>.size))
            // struct sockaddr_ll: family, protocol (big-endian), ifindex, hatype, pkttype, halen, addr[8].
            var address = [UInt8](repeating: 0, count: 20)
            address[0] = UInt8(AF_PACKET & 0xff)
            withUnsafeBytes(of: Int32(index)) { address.replaceSubrange(4..<8, with: $0) }
            let bound = address.withUnsafeBytes { bytes in
                bytes.baseAddress.map { bind(fd, $0.assumingMemoryBound(to: sockaddr.self), socklen_t(bytes.count)) } ?? -1
            }
            guard bound == 0 else { fail("virtio-net guest benchmark: cannot bind a packet socket to \(interface): errno \(errno)") }
        }

        deinit { close(fd) }

        /// Whether the kernel took the frame.
        func send(_ frame: [UInt8]) -> Bool {
            frame.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) } == frame.count
        }
    }
}

/// `setns(fd, CLONE_NEWNET)` for the calling thread: Glibc's module leaves
/// `setns` out (a `_GNU_SOURCE` declaration), so it is looked up at run time.
private func enterNetworkNamespace(_ fd: Int32) -> Int32 {
    typealias SetNamespace = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(nil, "setns") else { return -1 }
    return unsafeBitCast(symbol, to: SetNamespace.self)(fd, 0x4000_0000)
}
