import Firmware
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The freestanding virtio drivers in `firmware/multiboot/virtio-*.c`, each
/// run by `swiftvmm run --kernel` with its device attached, and the effect of
/// its work checked on the host: the disk image's bytes, the entropy, the
/// console text both ways, frames through a tap in a network namespace, a
/// vsock stream through the Unix socket, the VMM's resident memory.
///
/// Every guest first reports how it found its device: the VMM's
/// `virtio_mmio.device=4K@0xd0000000:5` on the command line and the DSDT's
/// LNRO0005 device must describe the same window and line.
///
/// A test whose device the CLI does not offer yet is skipped with that reason.
@Suite(.serialized) struct VirtioGuestCLITests {
    /// `swiftvmm run --help`, to find which device options exist.
    static let runHelp: String = (try? runSwiftVMM(["run", "--help"], timeout: 30))?.stdout ?? ""
    static func offers(_ option: String) -> Bool { runHelp.contains(option) }

    /// Whether the CLI takes `arguments` and builds their device, rather than
    /// refusing with "... is not available in this build yet": a run of the
    /// real-mode halt guest with them (a device it cannot open fails too,
    /// but with another message).
    static func builds(_ arguments: [String]) -> Bool {
        guard offers(arguments[0]), let guest = try? TemporaryFile(FirmwareImage.realHalt.bytes, name: "halt.bin"),
            let result = try? runSwiftVMM(["run"] + arguments + [guest.path], timeout: 30)
        else { return false }
        return !result.stderr.contains("not available in this build yet")
    }
    static let netBuilt = builds(["--net", "tap=svmm-probe0"])
    static let vsockBuilt: Bool = {
        let path = FileManager.default.temporaryDirectory.path + "/svmm-probe-\(getpid()).sock"
        defer { unlink(path) }
        return builds(["--vsock", "cid=3,socket=\(path)"])
    }()
    static let balloonBuilt = builds(["--balloon"])
    static let isRoot = getuid() == 0
    static let ipTool = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Checks the discovery lines every virtio guest prints for one device of `id` in the first slot.
    static func expectDiscovered(_ output: String, id: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        let window = "device at 0xd0000000 size 0x1000 irq 5"
        #expect(output.contains("virtio: cmdline \(window)\n"), "\(output)", sourceLocation: sourceLocation)
        #expect(output.contains("virtio: acpi \(window)\n"), "the DSDT's LNRO0005 device", sourceLocation: sourceLocation)
        #expect(output.contains("virtio: cmdline and acpi agree\n"), sourceLocation: sourceLocation)
        #expect(output.contains("virtio: id \(id) vendor 0x4d4d5653 at 0xd0000000\n"), "VendorID 'SVMM'", sourceLocation: sourceLocation)
    }

    /// The byte the blk guest writes at disk offset `offset`.
    static func blkPattern(_ offset: Int) -> UInt8 { UInt8((offset & 0xff) ^ ((offset >> 9) * 0x3b & 0xff) ^ 0xa5) }

    /// A 1 MiB image: a text in sector 0, 0xee everywhere else.
    static func makeImage(in directory: String) throws -> String {
        let path = directory + "/disk.img"
        var bytes = [UInt8](repeating: 0xee, count: 1 << 20)
        bytes.replaceSubrange(0..<20, with: Array("swiftvmm disk image\n".utf8))
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// With no virtio device attached, every guest walks the command line and
    /// the ACPI tables, finds nothing, says so and exits with 3.
    @Test func withoutADeviceEachGuestFindsNoneAndSaysSo() throws {
        let guests: [(FirmwareImage, Int)] = [
            (.multibootVirtioBlk, 2), (.multibootVirtioRng, 4), (.multibootVirtioConsole, 3), (.multibootVirtioNet, 1),
            (.multibootVirtioVsock, 19), (.multibootVirtioBalloon, 5),
        ]
        for (image, id) in guests {
            let kernel = try TemporaryFile(image.bytes, name: "guest.elf")
            let result = try runSwiftVMM(["run", "--kernel", kernel.path], timeout: 60)
            #expect(result.status == 3, "\(image.name): \(result.stdout)\n\(result.stderr)")
            #expect(result.stdout == "virtio: 0 on the command line, 0 in the DSDT\nvirtio: no device with id \(id)\n", "\(image.name)")
        }
    }

    @Test(.enabled(if: offers("--disk"), "SKIPPED: virtio-blk not built yet (no --disk)"))
    func blkWritesFlushesReadsBackAndZeroesTheImageFile() throws {
        let kernel = try TemporaryFile(FirmwareImage.multibootVirtioBlk.bytes, name: "blk.elf")
        let image = try Self.makeImage(in: (kernel.path as NSString).deletingLastPathComponent)
        let result = try runSwiftVMM(["run", "--kernel", kernel.path, "--disk", "path=\(image)"], timeout: 60)
        #expect(result.status == 0, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        Self.expectDiscovered(result.stdout, id: 2)
        for line in [
            "blk: capacity 2048 sectors read-only no", "blk: sector 0 starts 'swiftvmm disk im'",
            "blk: wrote 8 sectors at 1 status 0", "blk: flush status 0", "blk: read back 8 sectors: match",
            "blk: zeroes read back", "blk: discard 8 sectors at 24 status 0", "blk: done",
        ] {
            #expect(result.stdout.contains(line + "\n"), "missing '\(line)'")
        }
        #expect(result.stdout.range(of: #"blk: id '[^']*' status 0\n"#, options: .regularExpression) != nil, "GET_ID answered")

        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: image)))
        #expect(bytes.count == 1 << 20, "the image keeps its size")
        #expect(Array(bytes[0..<20]) == Array("swiftvmm disk image\n".utf8), "sector 0 untouched")
        #expect((512..<4608).allSatisfy { bytes[$0] == Self.blkPattern($0) }, "sectors 1-8 hold the guest's pattern")
        #expect(bytes[4608..<(16 * 512)].allSatisfy { $0 == 0xee }, "sectors 9-15 untouched")
        #expect(bytes[(16 * 512)..<(24 * 512)].allSatisfy { $0 == 0 }, "write-zeroes zeroed sectors 16-23")
        #expect(bytes[(32 * 512)...].allSatisfy { $0 == 0xee }, "nothing written past sector 31")
    }

    @Test(.enabled(if: offers("--disk"), "SKIPPED: virtio-blk not built yet (no --disk)"))
    func aReadOnlyDiskRefusesTheWriteAndTheFileIsUnchanged() throws {
        let kernel = try TemporaryFile(FirmwareImage.multibootVirtioBlk.bytes, name: "blk.elf")
        let image = try Self.makeImage(in: (kernel.path as NSString).deletingLastPathComponent)
        let before = try Data(contentsOf: URL(fileURLWithPath: image))
        // `irq`: this run waits on the device's interrupt through the IOAPIC instead of polling.
        let result = try runSwiftVMM(
            ["run", "--kernel", kernel.path, "--disk", "path=\(image),readonly=on", "--cmdline", "irq"], timeout: 60)
        #expect(result.status == 0, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        Self.expectDiscovered(result.stdout, id: 2)
        #expect(result.stdout.contains("virtio: waiting for interrupts on line 5\n"))
        #expect(!result.stdout.contains("irq: no interrupt"), "every wait ended by the device's interrupt")
        #expect(result.stdout.contains("blk: capacity 2048 sectors read-only yes\n"))
        #expect(result.stdout.contains("blk: sector 0 starts 'swiftvmm disk im'\n"))
        #expect(result.stdout.contains("blk: write refused, status 1\n"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: image)) == before)
    }

    /// Two devices get two windows and two lines, described alike on the
    /// command line and in the DSDT, and the guest finds its own among them.
    @Test(.enabled(if: offers("--disk") && offers("--rng"), "SKIPPED: virtio-blk or virtio-rng not built yet"))
    func twoDevicesGetTheirOwnWindowsAndLines() throws {
        let kernel = try TemporaryFile(FirmwareImage.multibootVirtioBlk.bytes, name: "blk.elf")
        let image = try Self.makeImage(in: (kernel.path as NSString).deletingLastPathComponent)
        let result = try runSwiftVMM(["run", "--kernel", kernel.path, "--rng", "--disk", "path=\(image)"], timeout: 60)
        #expect(result.status == 0, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let windows = lines.filter { $0.hasPrefix("virtio: cmdline device at ") }.map { $0.dropFirst(26) }
        #expect(Set(windows) == ["0xd0000000 size 0x1000 irq 5", "0xd0001000 size 0x1000 irq 6"], "\(lines)")
        #expect(lines.filter { $0.hasPrefix("virtio: acpi device at ") }.map { $0.dropFirst(23) } == windows)
        #expect(lines.contains("virtio: cmdline and acpi agree"))
        let found = lines.filter { $0.hasPrefix("virtio: id ") }
        #expect(
            found.count == 2 && found.contains { $0.hasPrefix("virtio: id 2 ") } && found.contains { $0.hasPrefix("virtio: id 4 ") },
            "\(found)")
        #expect(lines.contains("blk: read back 8 sectors: match"))
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: image)))
        #expect((512..<4608).allSatisfy { bytes[$0] == Self.blkPattern($0) })
    }

    @Test(.enabled(if: offers("--rng"), "SKIPPED: virtio-rng not built yet (no --rng)"))
    func rngFillsBuffersWithDifferentBytesAndInterrupts() throws {
        let kernel = try TemporaryFile(FirmwareImage.multibootVirtioRng.bytes, name: "rng.elf")
        let result = try runSwiftVMM(["run", "--kernel", kernel.path, "--rng"], timeout: 60)
        #expect(result.status == 0, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        Self.expectDiscovered(result.stdout, id: 4)
        let samples = result.stdout.split(separator: "\n").filter { $0.hasPrefix("rng: 32 bytes ") }.map { $0.dropFirst(14) }
        #expect(samples.count == 2)
        #expect(Set(samples).count == 2, "two requests, two different fillings")
        for sample in samples { #expect(Set(sample).count > 4, "not a constant: \(sample)") }
        #expect(result.stdout.contains("rng: interrupt after each request\n"))
    }

    @Test(.enabled(if: offers("--console-device"), "SKIPPED: virtio-console not built yet (no --console-device)"))
    func consoleCarriesTextBothWaysThroughItsSocket() throws {
        let kernel = try TemporaryFile(FirmwareImage.multibootVirtioConsole.bytes, name: "console.elf")
        let socketPath = (kernel.path as NSString).deletingLastPathComponent + "/hvc0.sock"
        let guest = try GuestProcess(swiftvmm: ["run", "--kernel", kernel.path, "--console-device", "socket:\(socketPath)"])
        defer { _ = guest.finish(seconds: 1) }
        // The guest reads first, so nothing it writes can be dropped before the host is connected.
        let host = try UnixStreamSocket.connect(to: socketPath, seconds: 20)
        #expect(guest.waitForOutput("console: waiting for a line on hvc0", seconds: 30), "\(guest.stdout)\n\(guest.stderr)")
        try host.write("typed on the host\n")
        #expect(try host.readLine(seconds: 20) == "hello from hvc0", "the guest's hvc0 output reaches the host")
        #expect(try host.readLine(seconds: 20) == "echo: typed on the host")
        let status = guest.finish(seconds: 30)
        #expect(status == 0, "stdout: \(guest.stdout)\nstderr: \(guest.stderr)")
        Self.expectDiscovered(guest.stdout, id: 3)
        #expect(guest.stdout.contains("console: received 'typed on the host'\n"), "the host's input reaches hvc0")
        #expect(guest.stdout.contains("console: sent hello and echo\n"))
    }

    @Test(
        .enabled(if: netBuilt, "SKIPPED: virtio-net not built yet"),
        .enabled(if: isRoot && ipTool != nil, "SKIPPED: needs root and ip(8) for a network namespace and a tap"))
    func netExchangesARPAndICMPWithATapInANamespace() throws {
        let ip = try #require(Self.ipTool)
        let namespace = "svmm-gv-\(getpid())"
        func inNamespace(_ arguments: [String]) throws -> CommandResult {
            try runCommand(ip, ["netns", "exec", namespace] + arguments)
        }
        defer { _ = try? runCommand(ip, ["netns", "delete", namespace]) }
        try makeTapNamespace(namespace, ip: ip)
        let tapMAC = try inNamespace(["cat", "/sys/class/net/svmmtap0/address"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let kernel = try TemporaryFile(FirmwareImage.multibootVirtioNet.bytes, name: "net.elf")
        let result = try runCommand(
            ip,
            [
                "netns", "exec", namespace, try swiftvmmBinary().path, "run", "--kernel", kernel.path,
                "--net", "tap=svmmtap0,mac=52:54:00:ab:cd:ef", "--cmdline", "ip=10.0.2.15 host=10.0.2.1",
            ], timeout: 60)
        #expect(result.status == 0, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        Self.expectDiscovered(result.stdout, id: 1)
        #expect(result.stdout.contains("net: mac 52:54:00:ab:cd:ef ip 10.0.2.15 host 10.0.2.1\n"), "the MAC from the device's config")
        #expect(result.stdout.contains("net: arp reply: 10.0.2.1 is at \(tapMAC)\n"), "the host's kernel answered")
        #expect(result.stdout.range(of: #"net: echo reply from 10\.0\.2\.1 seq \d+ bytes 24\n"#, options: .regularExpression) != nil)
        // The host side saw the guest: the namespace's ICMP counters (its own
        // /proc/net/snmp) show the echo request answered, and the tap counted
        // frames both ways. (Its neighbour entry for the guest went with the
        // carrier when swiftvmm closed the tap.)
        let snmp = try inNamespace(["cat", "/proc/net/snmp"]).stdout.split(separator: "\n").filter { $0.hasPrefix("Icmp: ") }
        try #require(snmp.count == 2, "\(snmp)")
        let icmp = Dictionary(
            zip(snmp[0].split(separator: " ").dropFirst(), snmp[1].split(separator: " ").dropFirst().compactMap { Int($0) }),
            uniquingKeysWith: { a, _ in a })
        #expect((icmp["InEchos"] ?? 0) >= 1 && (icmp["OutEchoReps"] ?? 0) >= 1, "\(icmp)")
        func counter(_ name: String) throws -> Int {
            Int(
                try inNamespace(["cat", "/sys/class/net/svmmtap0/statistics/\(name)"]).stdout.trimmingCharacters(
                    in: .whitespacesAndNewlines)) ?? 0
        }
        #expect(try counter("rx_packets") >= 2, "the guest's ARP request and echo request reached the host")
        #expect(try counter("tx_packets") >= 2, "the host's ARP reply and echo reply left for the guest")
    }

    @Test(.enabled(if: vsockBuilt, "SKIPPED: virtio-vsock not built yet"))
    func vsockEchoesThroughTheUnixSocketAndConnectsOut() throws {
        let kernel = try TemporaryFile(FirmwareImage.multibootVirtioVsock.bytes, name: "vsock.elf")
        let socketPath = (kernel.path as NSString).deletingLastPathComponent + "/v.sock"
        // Guest-initiated connections to port 5000 go to <socket>_5000.
        let outbound = try UnixStreamSocket.listen(at: socketPath + "_5000")
        let guest = try GuestProcess(swiftvmm: [
            "run", "--kernel", kernel.path, "--vsock", "cid=3,socket=\(socketPath)", "--cmdline", "listen=1234 connect=5000",
        ])
        defer { _ = guest.finish(seconds: 1) }
        #expect(guest.waitForOutput("vsock: listening on port 1234", seconds: 30), "\(guest.stdout)\n\(guest.stderr)")

        let host = try UnixStreamSocket.connect(to: socketPath, seconds: 10)
        try host.write("CONNECT 1234\n")
        let answer = try #require(try host.readLine(seconds: 20))
        #expect(answer.range(of: #"^OK \d+$"#, options: .regularExpression) != nil, "\(answer)")
        try host.write("ping over vsock\n")
        #expect(try host.readLine(seconds: 20) == "ping over vsock", "the guest echoed it")

        let connection = try outbound.accept(seconds: 20)
        #expect(try connection.readLine(seconds: 20) == "hello from the guest")
        try connection.write("hello from the host\n")

        let status = guest.finish(seconds: 30)
        #expect(status == 0, "stdout: \(guest.stdout)\nstderr: \(guest.stderr)")
        Self.expectDiscovered(guest.stdout, id: 19)
        #expect(guest.stdout.contains("vsock: guest cid 3\n"))
        #expect(guest.stdout.contains("vsock: echoed 'ping over vsock'\n"))
        #expect(guest.stdout.contains("vsock: connected to cid 2 port 5000\n"))
        #expect(guest.stdout.contains("vsock: received 'hello from the host'\n"))
    }

    @Test(.enabled(if: balloonBuilt, "SKIPPED: virtio-balloon not built yet"))
    func balloonInflationShrinksTheVMMsResidentMemory() throws {
        let kernel = try TemporaryFile(FirmwareImage.multibootVirtioBalloon.bytes, name: "balloon.elf")
        let pages = 8192  // 32 MiB
        let guest = try GuestProcess(swiftvmm: [
            "run", "--kernel", kernel.path, "--balloon", "--memory", "128M", "--cmdline", "sync pages=\(pages)",
        ])
        #expect(guest.waitForOutput("balloon: touched \(pages) pages", seconds: 30), "\(guest.stdout)\n\(guest.stderr)")
        let touched = try #require(guest.residentBytes)
        guest.send("g")
        #expect(guest.waitForOutput("balloon: inflated \(pages) pages", seconds: 30), "\(guest.stdout)\n\(guest.stderr)")
        // The device gives pages back from its own thread: allow it a moment after the used ring says done.
        var inflated = try #require(guest.residentBytes)
        for _ in 0..<20 where touched - min(touched, inflated) < 24 << 20 {
            usleep(50_000)
            inflated = guest.residentBytes ?? inflated
        }
        guest.send("g")
        let status = guest.finish(seconds: 30)
        #expect(status == 0, "stdout: \(guest.stdout)\nstderr: \(guest.stderr)")
        Self.expectDiscovered(guest.stdout, id: 5)
        #expect(
            touched > inflated && touched - inflated >= 24 << 20,
            "RSS \(touched >> 20) MiB touched, \(inflated >> 20) MiB inflated: 32 MiB given back")
        #expect(guest.stdout.contains("balloon: deflated \(pages) pages\n"))
        #expect(guest.stdout.contains("balloon: \(pages) of \(pages) pages read zero after deflate\n"), "the host discarded them")
    }
}

/// Makes the network namespace `namespace`, its loopback up and the tap
/// `svmmtap0` in it at 10.0.2.1/24, up: where a guest's virtio-net meets the
/// host. The caller deletes the namespace.
func makeTapNamespace(_ namespace: String, ip: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(try runCommand(ip, ["netns", "add", namespace]).status == 0, sourceLocation: sourceLocation)
    for step in [
        ["ip", "link", "set", "lo", "up"], ["ip", "tuntap", "add", "dev", "svmmtap0", "mode", "tap"],
        ["ip", "addr", "add", "10.0.2.1/24", "dev", "svmmtap0"], ["ip", "link", "set", "svmmtap0", "up"],
    ] {
        let done = try runCommand(ip, ["netns", "exec", namespace] + step)
        try #require(done.status == 0, "\(step.joined(separator: " ")): \(done.stderr)", sourceLocation: sourceLocation)
    }
}

/// Runs `executable` with `arguments` to its end (killed after `timeout` seconds).
func runCommand(_ executable: String, _ arguments: [String], timeout: Double = 30) throws -> CommandResult {
    let process = try GuestProcess(executable: URL(fileURLWithPath: executable), arguments: arguments)
    let status = process.finish(seconds: timeout)
    return CommandResult(status: status ?? -1, stdout: process.stdout, stderr: process.stderr)
}
