import Firmware
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 15: a guest flooding COM1 (`longmode/serial-flood.S`, `rep outsb` of
/// 4 KiB at a time) with the VMM's stdout going to a file: the VMM's memory
/// stays flat, the file gets what the rate limit allows and no more, and the
/// guest still finishes.
///
/// How big a flood a host can make depends on how much string port output KVM
/// hands the VMM per exit: were it a page, 1 GiB would be ~262,144 exits, but
/// KVM emulates `outs` one element per exit (`em_out` passes a count of 1, on
/// VT-x and SVM as on the PVM back end here), and 1 GiB takes hours. A 64 KiB
/// probe measures it; the 1 GiB flood runs where it fits in a minute and a
/// flood sized to about 6 s runs otherwise, the figures printed either way.
@Suite(.serialized, .disabled(if: SandboxCLITests.sanitized, "SKIPPED: slow under sanitizers (one exit per byte costs more there)"))
struct SerialFloodCLITests {
    /// What the guest writes to the debug-exit port when its flood is done.
    static let guestStatus: Int32 = 0x46
    static let gibibyte: UInt64 = 1 << 30

    /// The flood guest, set to write `bytes` bytes to `port`.
    static func guest(bytes: UInt64, port: UInt16 = 0x3f8) throws -> [UInt8] {
        let image = FirmwareImage.longSerialFlood
        var data = image.bytes
        let count = Int(try #require(image.symbol("flood_bytes")) - image.loadAddress)
        let portOffset = Int(try #require(image.symbol("flood_port")) - image.loadAddress)
        data.replaceSubrange(count..<count + 8, with: withUnsafeBytes(of: bytes.littleEndian, Array.init))
        data.replaceSubrange(portOffset..<portOffset + 2, with: withUnsafeBytes(of: port.littleEndian, Array.init))
        return data
    }

    /// The 4 KiB the guest writes over and over.
    static func block() throws -> [UInt8] {
        let image = FirmwareImage.longSerialFlood
        let start = Int(try #require(image.symbol("block")) - image.loadAddress)
        return Array(image.bytes[start..<start + 4096])
    }

    /// One `swiftvmm run --stats` of the flood guest.
    struct Flood: Sendable {
        var status: Int32
        var stderr: String
        /// Wall time from start to exit: the longest the rate limit can have been refilling.
        var seconds: Double
        var exits: Int
        var guestMilliseconds: Double
        var peakRSSKiB: Int
        /// What reached stdout (a file, or the part of a pipe nobody read).
        var output: [UInt8]

        init(status: Int32, stderr: String, seconds: Double, output: [UInt8]) {
            self.status = status
            self.stderr = stderr
            self.seconds = seconds
            self.output = output
            // "swiftvmm: stats: N exits, guest ran T ms, peak RSS R KiB"
            func number(after label: String, upTo end: String) -> Double? {
                guard let start = stderr.range(of: label), let stop = stderr[start.upperBound...].range(of: end) else { return nil }
                return Double(stderr[start.upperBound..<stop.lowerBound])
            }
            exits = Int(number(after: "stats: ", upTo: " exits") ?? -1)
            guestMilliseconds = number(after: "guest ran ", upTo: " ms") ?? -1
            peakRSSKiB = Int(number(after: "peak RSS ", upTo: " KiB") ?? -1)
        }
    }

    /// Runs the guest flooding `bytes` with stdout to a file (or, with
    /// `unreadPipe`, to a pipe nobody reads until the VMM has exited).
    static func flood(bytes: UInt64, arguments: [String] = [], unreadPipe: Bool = false, timeout: Double) throws -> Flood {
        let directory = try TemporaryDirectory(["flood.bin": try guest(bytes: bytes)])
        let process = Process()
        process.executableURL = try swiftvmmBinary()
        process.arguments = ["run", "--mode", "long", "--stats"] + arguments + [directory.path("flood.bin")]
        let outputPath = directory.path("stdout")
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let file = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        let pipe = Pipe()
        process.standardOutput = unreadPipe ? pipe : file
        let err = Pipe()
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let start = Date()
        try process.run()
        try file.close()
        nonisolated(unsafe) var stderrData = Data()
        let drained = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            stderrData = err.fileHandleForReading.readDataToEndOfFile()
            drained.signal()
        }
        let deadline = start.addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        let timedOut = process.isRunning
        if timedOut {
            process.terminate()
            // A writer blocked on the pipe ends only once the pipe is read.
            if unreadPipe { _ = pipe.fileHandleForReading.readDataToEndOfFile() }
        }
        process.waitUntilExit()
        let seconds = Date().timeIntervalSince(start)
        drained.wait()
        if timedOut { throw CLITestError.timedOut(process.arguments ?? []) }
        let output: Data
        if unreadPipe {
            try? pipe.fileHandleForWriting.close()
            output = pipe.fileHandleForReading.readDataToEndOfFile()
        } else {
            output = try Data(contentsOf: URL(fileURLWithPath: outputPath))
        }
        return Flood(
            status: process.terminationStatus, stderr: String(decoding: stderrData, as: UTF8.self), seconds: seconds, output: Array(output))
    }

    /// What a 64 KiB flood shows about this host.
    struct HostFigures: Sendable {
        var probe: Flood
        static let probeBytes: UInt64 = 64 << 10
        /// Bytes of string port I/O KVM carries per exit (the probe's few other exits included).
        var bytesPerExit: Double { Double(Self.probeBytes) / Double(max(probe.exits, 1)) }
        /// How fast the guest floods, by the time it ran.
        var bytesPerSecond: Double { Double(Self.probeBytes) / max(probe.guestMilliseconds, 0.1) * 1000 }
        var secondsForAGibibyte: Double { Double(SerialFloodCLITests.gibibyte) / bytesPerSecond }
        /// Whether the 1 GiB flood runs: a page (or most of one) per exit, and done in a minute.
        var floodsAGibibyte: Bool { bytesPerExit >= 1024 && secondsForAGibibyte <= 60 }
        var summary: String {
            String(
                format:
                    "%.1f bytes per exit (%d exits for 64 KiB in %.1f ms), %.0f KiB/s, peak RSS %d KiB; 1 GiB would take %.0f s (%.1f h)",
                bytesPerExit, probe.exits, probe.guestMilliseconds, bytesPerSecond / 1024, probe.peakRSSKiB, secondsForAGibibyte,
                secondsForAGibibyte / 3600)
        }
    }

    static let host = Result { () throws -> HostFigures in
        let probe = try flood(bytes: HostFigures.probeBytes, timeout: 60)
        guard probe.status == guestStatus, probe.exits > 0, probe.guestMilliseconds > 0, probe.peakRSSKiB > 0 else {
            throw CLITestError.timedOut(["the 64 KiB probe flood failed (status \(probe.status)): \(probe.stderr)"])
        }
        return HostFigures(probe: probe)
    }

    /// Checks (a) flat memory against the probe, (b) the output is what the
    /// limit allows for the run's time, made of the guest's bytes, and (c) the guest's status.
    static func check(_ run: Flood, bytes: UInt64, bytesPerSecond: Int, against figures: HostFigures) throws {
        let burst = bytesPerSecond * 8
        #expect(run.status == guestStatus, "the guest finished and swiftvmm exited with its status: \(run.stderr)")
        #expect(run.stderr.contains("debug-exit"), "\(run.stderr)")
        // One buffer's worth of slack: the limiter counts whole flushes.
        let allowed = burst + Int(run.seconds * Double(bytesPerSecond)) + 4096
        #expect(
            run.output.count >= burst && run.output.count <= allowed && UInt64(run.output.count) < bytes,
            "\(run.output.count) bytes of \(bytes) reached the file in \(run.seconds) s; the limit allows \(burst) + \(bytesPerSecond)/s = \(allowed)"
        )
        // The burst goes out whole: the guest's blocks, in order.
        let block = try block()
        let whole = min(burst, run.output.count) / 4096
        #expect((0..<whole).allSatisfy { run.output[$0 * 4096..<($0 + 1) * 4096].elementsEqual(block) }, "the burst is the guest's bytes")
        let alphabet = Set(block)
        #expect(run.output[(whole * 4096)...].allSatisfy(alphabet.contains), "after the burst, only the guest's bytes")
        // A few MiB of slack for the allocator; a VMM keeping what it drops would grow by the flood's size.
        #expect(
            run.peakRSSKiB > 0 && run.peakRSSKiB - figures.probe.peakRSSKiB < 4096,
            "peak RSS \(figures.probe.peakRSSKiB) KiB after 64 KiB, \(run.peakRSSKiB) KiB after \(bytes) bytes")
        print(
            "serial flood: \(bytes) bytes in \(String(format: "%.1f", run.seconds)) s (\(run.exits) exits), \(run.output.count) bytes to the file "
                + "(limit \(bytesPerSecond)/s after \(burst)), peak RSS \(figures.probe.peakRSSKiB) KiB after 64 KiB, \(run.peakRSSKiB) KiB after the flood"
        )
    }

    static let gibibyteSkipped: Comment =
        "SKIPPED: KVM carries `rep outsb` a byte per exit here (its emulator's em_out): 1 GiB would take hours; the sized flood runs instead"

    @Test(.enabled(gibibyteSkipped) { (try? SerialFloodCLITests.host.get())?.floodsAGibibyte ?? false })
    func aGibibyteFloodWithTheDefaultLimitKeepsMemoryFlat() throws {
        let figures = try Self.host.get()
        print("serial flood: this host: \(figures.summary)")
        let run = try Self.flood(bytes: Self.gibibyte, timeout: 180)
        try Self.check(run, bytes: Self.gibibyte, bytesPerSecond: 1 << 20, against: figures)
    }

    /// The same three properties with a flood of about 6 s and a limit scaled
    /// to the guest's speed (an eighth of it a second, so the burst is about a
    /// second's flood and most of the rest is dropped).
    @Test(.enabled { !((try? SerialFloodCLITests.host.get())?.floodsAGibibyte ?? false) })
    func aFloodSizedToThisHostKeepsMemoryFlatAndTheLimitHolds() throws {
        let figures = try Self.host.get()
        let bytes = min(max(UInt64(figures.bytesPerSecond * 6) / 4096 * 4096, 256 << 10), 256 << 20)
        let rate = max(Int(figures.bytesPerSecond / 8) / 1024 * 1024, 1024)
        print(
            "serial flood: SKIPPED the 1 GiB flood: \(figures.summary); "
                + "flooding \(bytes >> 10) KiB with --serial-rate-limit \(rate >> 10)K")
        let run = try Self.flood(bytes: bytes, arguments: ["--serial-rate-limit", "\(rate >> 10)K"], timeout: 120)
        try Self.check(run, bytes: bytes, bytesPerSecond: rate, against: figures)
    }

    /// A reader that never reads: the VMM waits for it a while, then drops
    /// what it cannot write, so the guest finishes and memory stays flat
    /// (before, the vCPU thread blocked in `write` for good). On the PC
    /// platform (`--rng`), whose halt probe kicks the vCPU thread with a
    /// signal every 200 ms, which cuts the wait short again and again.
    @Test func aStdoutNobodyReadsNeitherBlocksTheGuestNorGrowsMemory() throws {
        let figures = try Self.host.get()
        let bytes: UInt64 = 128 << 10
        let run = try Self.flood(bytes: bytes, arguments: ["--rng"], unreadPipe: true, timeout: 60)
        #expect(run.status == Self.guestStatus, "the guest finished: \(run.stderr)")
        // The pipe holds what went in before it filled (64 KiB by default): the guest's first blocks.
        let block = try Self.block()
        #expect(run.output.count >= 4096 && UInt64(run.output.count) < bytes, "\(run.output.count) bytes in the pipe")
        #expect((0..<run.output.count / 4096).allSatisfy { run.output[$0 * 4096..<($0 + 1) * 4096].elementsEqual(block) })
        #expect(run.peakRSSKiB > 0 && run.peakRSSKiB - figures.probe.peakRSSKiB < 4096, "peak RSS \(run.peakRSSKiB) KiB")
        print("serial flood: unread stdout: \(run.output.count) of \(bytes) bytes in the pipe, done in \(run.seconds) s")
    }
}
