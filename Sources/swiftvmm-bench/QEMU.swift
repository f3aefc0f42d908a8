// QEMU's side of the restore comparison: a 128 MiB `-M pc` guest (the
// multiboot/resume-probe kernel) migrated to a file while it polls
// pc-testdev, then `qemu-system-x86_64 ... -incoming "exec:cat FILE"` timed
// from fork to its exit, which is the guest's first action after the resume
// (isa-debug-exit, status 0x21).
import Firmware
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

enum QEMUBenchmark {
    /// The probe's debugExit(0x10) as QEMU's isa-debug-exit reports it: (0x10 << 1) | 1.
    static let resumedStatus: Int32 = 0x21

    /// The machine both sides must agree on (the migration stream names every device).
    static func machineArguments(kernel: String) -> [String] {
        [
            "-M", "pc", "-accel", "kvm", "-m", "128", "-nographic", "-nodefaults", "-kernel", kernel,
            "-device", "pc-testdev", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
        ]
    }

    /// Fork-to-exit milliseconds of `rounds` restores, or why there are none;
    /// each round first runs `interleaved` (swiftvmm's restore, in
    /// milliseconds), so that both sides see the same load on a shared host.
    static func run(rounds: Int, interleaved: () -> Double?) -> Result<(qemu: [Double], other: [Double]), SkipReason> {
        guard let qemu = executableOnPath("qemu-system-x86_64") else {
            return .failure(SkipReason("qemu-system-x86_64 is not installed"))
        }
        let directory = scratchDirectory("qemu")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let kernel = directory + "/resume-probe.elf"
        let migration = directory + "/migration"
        let com1 = directory + "/com1"
        let socketPath = directory + "/qmp.sock"
        guard FileManager.default.createFile(atPath: kernel, contents: Data(FirmwareImage.multibootResumeProbe.bytes)) else {
            return .failure(SkipReason("cannot write \(kernel)"))
        }

        // The source: boot, wait for the probe to poll, migrate to the file, quit.
        let source = Process()
        source.executableURL = URL(fileURLWithPath: qemu)
        source.arguments =
            machineArguments(kernel: kernel) + ["-serial", "file:" + com1, "-qmp", "unix:\(socketPath),server=on,wait=off"]
        source.standardOutput = FileHandle.nullDevice
        let sourceErrors = Pipe()
        source.standardError = sourceErrors
        do { try source.run() } catch { return .failure(SkipReason("cannot start \(qemu): \(error)")) }
        defer { if source.isRunning { source.terminate() } }
        let migrated = migrate(socketPath: socketPath, com1: com1, to: migration, source: source)
        source.waitUntilExit()
        if case .failure(let reason) = migrated {
            let said =
                String(decoding: sourceErrors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                .split(separator: "\n").filter { !$0.contains("warning") }.first ?? ""
            return .failure(SkipReason("\(reason)\(said.isEmpty ? "" : "; QEMU said: \(said)")"))
        }

        // The restores: the same machine with -incoming, COM1 to nowhere.
        let restoreArguments = [qemu] + machineArguments(kernel: kernel) + ["-serial", "null", "-incoming", "exec:cat \(migration)"]
        var times: [Double] = []
        var others: [Double] = []
        let errors = directory + "/incoming.err"
        for round in 0...rounds {
            guard let other = interleaved() else { return .failure(SkipReason("the interleaved swiftvmm restore failed")) }
            guard let child = spawnAndWait(restoreArguments, output: ChildOutput(stderr: errors)) else {
                return .failure(SkipReason("cannot start \(qemu)"))
            }
            guard exitStatus(child.status) == resumedStatus else {
                let said =
                    ((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "").split(separator: "\n")
                    .filter { !$0.contains("warning") }.first ?? ""
                return .failure(SkipReason("QEMU -incoming ended with wait status \(child.status), not the probe's exit: \(said)"))
            }
            if round > 0 {
                times.append(Double(child.nanoseconds) / 1e6)
                others.append(other)
            }
        }
        return .success((times, others))
    }

    /// Drives the source QEMU over QMP: waits for the probe's line on COM1,
    /// migrates to `file`, waits for completion, quits.
    static func migrate(socketPath: String, com1: String, to file: String, source: Process) -> Result<Void, SkipReason> {
        guard let qmp = QMPConnection(path: socketPath, patience: 10) else {
            return .failure(SkipReason("cannot connect to QEMU's QMP socket"))
        }
        defer { qmp.close() }
        guard qmp.readLine()?.contains("QMP") == true, qmp.execute(#"{"execute":"qmp_capabilities"}"#) != nil else {
            return .failure(SkipReason("no QMP greeting"))
        }
        // The guest boots through SeaBIOS, whose real-mode code this host emulates: seconds.
        let deadline = monotonicNanoseconds() + 120_000_000_000
        while !((try? String(contentsOfFile: com1, encoding: .utf8)) ?? "").contains("resume-probe: waiting") {
            guard source.isRunning else {
                return .failure(SkipReason("the source QEMU ended (status \(source.terminationStatus)) before the guest polled"))
            }
            guard monotonicNanoseconds() < deadline else {
                return .failure(SkipReason("the guest did not reach its poll loop within 120 s"))
            }
            usleep(50_000)
        }
        guard let started = qmp.execute(#"{"execute":"migrate","arguments":{"uri":"exec:cat > \#(file)"}}"#), started.contains("return")
        else { return .failure(SkipReason("QEMU refused to migrate")) }
        while true {
            guard let status = qmp.execute(#"{"execute":"query-migrate"}"#) else { return .failure(SkipReason("QMP went away")) }
            if status.contains("\"completed\"") { break }
            if status.contains("\"failed\"") { return .failure(SkipReason("migration failed: \(status)")) }
            guard monotonicNanoseconds() < deadline else { return .failure(SkipReason("migration did not complete within 120 s")) }
            usleep(20_000)
        }
        _ = qmp.execute(#"{"execute":"quit"}"#)
        return .success(())
    }
}

/// A line-oriented client for QEMU's QMP socket.
final class QMPConnection {
    private let fd: Int32
    private var buffer: [UInt8] = []

    init?(path: String, patience seconds: Int) {
        let deadline = monotonicNanoseconds() + UInt64(seconds) * 1_000_000_000
        while true {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return nil }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (i, byte) in bytes.enumerated() { raw[i] = byte }
            }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if connected == 0 {
                self.fd = fd
                return
            }
            Glibc.close(fd)
            guard monotonicNanoseconds() < deadline else { return nil }
            usleep(50_000)
        }
    }

    func close() { Glibc.close(fd) }

    func readLine() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(fd, &chunk, chunk.count)
            guard count > 0 else { return nil }
            buffer += chunk[..<count]
        }
    }

    /// Sends `command`; the reply (events in between are skipped).
    func execute(_ command: String) -> String? {
        let bytes = Array((command + "\n").utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { return nil }
        while let line = readLine() {
            if line.contains("\"return\"") || line.contains("\"error\"") { return line }
        }
        return nil
    }
}
