import Devices
import Dispatch
import Firmware
import Foundation
import Migration
import SwiftVMM
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Live migration between two machines in this process, over a Unix socket
/// and TCP on loopback, with `firmware/multiboot/dirty-memory.c` rewriting
/// its working set for ever and printing a checksum per pass: the
/// destination's lines must continue the source's, with the sums a run that
/// never moved prints (a page lost or stale changes the next sum). Failures
/// injected on the way must leave the guest running on the source, its
/// lines going on as before.
///
/// The guest never ends by itself: a guest that ends after a fixed number of
/// passes raced the migration, which under the sanitizers on a loaded host
/// took longer than the guest's whole run.
@Suite struct LiveMigrationTests {
    /// A value handed between threads by a test that waits for it.
    final class Box<Value>: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: Value?
        private let ready = DispatchSemaphore(value: 0)
        func put(_ value: Value) {
            lock.withLock { stored = value }
            ready.signal()
        }
        func take(timeout: Duration = .seconds(90)) -> Value? {
            let ns = Int(timeout.components.seconds) * 1_000_000_000
            guard ready.wait(timeout: .now() + .nanoseconds(ns)) == .success else { return nil }
            return lock.withLock { stored }
        }
    }

    final class Unchecked<Value>: @unchecked Sendable {
        let value: Value
        init(_ value: Value) { self.value = value }
    }

    struct Guest {
        var kib: UInt64 = 4096
        /// 0: for ever.
        var passes: UInt64 = 0
        var rate: UInt64 = 16
        var vcpus = 1
        var memoryBacking = MemoryBacking.anonymous
        var commandLine: String { "ws=\(kib)K iters=\(passes) rate=\(rate)" }
    }

    /// A source machine running `guest` on a thread of its own; `reason` gives its end.
    struct Source {
        let machine: Machine
        let output: SerialBufferOutput
        let reason: Box<Result<StopReason, MachineError>>
    }

    func startSource(_ guest: Guest) throws -> Source {
        let output = SerialBufferOutput()
        var configuration = MachineConfiguration(
            guest: .multiboot(kernel: FirmwareImage.multibootDirtyMemory.bytes, name: "dirty.elf", commandLine: guest.commandLine),
            memorySize: 32 << 20, serialOutput: output)
        configuration.memoryBacking = guest.memoryBacking
        if guest.vcpus > 1 {
            configuration.platform = .pc
            configuration.vcpuCount = guest.vcpus
        }
        let machine = try Machine(configuration)
        let reason = Box<Result<StopReason, MachineError>>()
        let shared = Unchecked(machine)
        Thread.detachNewThread {
            reason.put(Result { () throws(MachineError) -> StopReason in try shared.value.run(timeout: .seconds(90)) })
        }
        return Source(machine: machine, output: output, reason: reason)
    }

    /// Waits until the source printed `line` (a pass has gone by).
    func wait(for text: String, in output: SerialBufferOutput) {
        let deadline = ContinuousClock.now + .seconds(30)
        while !output.text.contains(text), ContinuousClock.now < deadline { usleep(2_000) }
    }

    /// A destination waiting at `address` on a thread; `machine` gives what it received.
    func startDestination(at address: MigrationAddress, options: IncomingMigrationOptions = IncomingMigrationOptions())
        -> (output: SerialBufferOutput, machine: Box<Result<Unchecked<Machine>, MigrationError>>)
    {
        let output = SerialBufferOutput()
        let box = Box<Result<Unchecked<Machine>, MigrationError>>()
        let listening = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            do throws(MigrationError) {
                let machine = try Machine.receiveMigration(
                    at: address, io: MachineIO(serialOutput: output), options: options, acceptTimeout: .seconds(30)
                ) { listening.signal() }
                box.put(.success(Unchecked(machine)))
            } catch {
                listening.signal()
                box.put(.failure(error))
            }
        }
        listening.wait()
        return (output, box)
    }

    static func socketPath(_ name: String) -> String { "/tmp/swiftvmm-migration-\(getpid())-\(name).sock" }

    func migrateMidRun(
        to address: MigrationAddress, guest: Guest = Guest(), options: MigrationOptions = MigrationOptions(),
        incoming: IncomingMigrationOptions = IncomingMigrationOptions()
    ) throws -> MigrationReport {
        let destination = startDestination(at: address, options: incoming)
        let source = try startSource(guest)
        wait(for: "pass 2 ", in: source.output)
        let report = try source.machine.migrate(to: address, options: options) { print("progress: \($0.line)") }
        print("report: \(report)")
        #expect(try source.reason.take()?.get() == .migrated)
        let received = Unchecked(try #require(destination.machine.take()).get().value)
        let ended = Box<Result<StopReason, MachineError>>()
        Thread.detachNewThread {
            ended.put(Result { () throws(MachineError) -> StopReason in try received.value.run(timeout: .seconds(60)) })
        }
        // Three passes on the destination: its lines continue the source's, with the right sums.
        let sourceLines = source.output.text.split(separator: "\n").count - 1
        wait(for: "pass \(sourceLines + 3) ", in: destination.output)
        received.value.requestStop()
        #expect(try ended.take()?.get() == .stopRequested)
        #expect(destination.output.text.contains("pass \(sourceLines + 3) "), "the guest went on on the destination")
        checkEndlessOutput(source.output.text + destination.output.text, kib: guest.kib, boundary: sourceLines + 1)
        return report
    }

    @Test func midRunOverAUnixSocket() throws {
        let report = try migrateMidRun(to: .unix(path: Self.socketPath("unix")))
        #expect(report.pagesSent >= 1024, "the 4 MiB working set went over")
        #expect(report.zeroPages > 4096, "untouched RAM went as zero markers")
        // Untouched RAM costs next to nothing: the bytes are the pages sent
        // plus headers and state. (How many rounds the working set needs,
        // and so how many pages, depends on the host's speed and load.)
        #expect(report.bytesSent > report.pagesSent * 4096)
        #expect(report.bytesSent < report.pagesSent * 4096 + (1 << 20), "\(report)")
    }

    @Test func midRunOverTCPLoopback() throws {
        let port = UInt16(20000 + getpid() % 20000)
        _ = try migrateMidRun(to: .tcp(host: "127.0.0.1", port: port))
    }

    @Test func twoVCPUsWithTimerInterrupts() throws {
        // rate= takes the PIT's ticks through the IOAPIC: a migrated timer must keep ticking.
        _ = try migrateMidRun(to: .unix(path: Self.socketPath("smp")), guest: Guest(vcpus: 2))
    }

    /// The sum the guest prints on its line for pass `p` over `kib` KiB: that
    /// of what pass p-1 wrote (zeros, fresh RAM, before pass 1).
    static func passSum(_ p: UInt64, kib: UInt64) -> String {
        var sum: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in 0..<(kib * 1024 / 8) {
            let word = p == 1 ? 0 : ((i &+ 1) &* 0x9e37_79b9_7f4a_7c15) ^ ((p - 1) &* 0xd6e8_feb8_6659_fd93)
            let folded = (sum ^ word) &* 0x100_0000_01b3
            sum = folded >> 17 | folded << 47
        }
        let digits = String(sum, radix: 16)
        return "0x" + String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Checks a run of `dirty: ... iters=0` output cut anywhere: consecutive
    /// pass lines from 1, and the right sums for the first lines and those
    /// around `boundary` (the first line the destination printed).
    func checkEndlessOutput(_ text: String, kib: UInt64, boundary: Int?) {
        // A guest stopped or still running may be half-way through a line: only whole lines count.
        let whole = text[..<(text.lastIndex(of: "\n") ?? text.startIndex)]
        let lines = whole.split(separator: "\n").dropFirst().filter { $0.hasPrefix("pass ") }
        for (index, line) in lines.enumerated() {
            let fields = line.split(separator: " ")
            guard fields.count == 4, Int(fields[1]) == index + 1 else {
                Issue.record("line \(index + 2) is '\(line)', expected pass \(index + 1)")
                return
            }
        }
        var checked = Array(1...min(3, lines.count))
        if let boundary { checked += (max(1, boundary - 1)...min(lines.count, boundary + 2)).map { $0 } }
        for p in Set(checked) {
            let fields = lines[lines.startIndex + p - 1].split(separator: " ")
            #expect(String(fields[3]) == Self.passSum(UInt64(p), kib: kib), "pass \(p)'s sum (memory after the move)")
        }
    }

    @Test func autoConvergeWithATinyBandwidthConvergesOrFailsCleanly() throws {
        // As fast as it can over 4 MiB, for ever, against 16 MiB/s and 100 ms: 1.6 MiB
        // may be left for the pause, and only the throttle can make the guest dirty less.
        let guest = Guest(kib: 4096, passes: 0, rate: 0)
        let address = MigrationAddress.unix(path: Self.socketPath("converge"))
        let destination = startDestination(at: address)
        let source = try startSource(guest)
        wait(for: "pass 2 ", in: source.output)
        let options = MigrationOptions(downtimeLimit: .milliseconds(100), bandwidthLimit: 16 << 20, timeout: .seconds(12))
        final class Peak: @unchecked Sendable {
            let lock = NSLock()
            var value = 0
        }
        let peak = Peak()
        do {
            let report = try source.machine.migrate(to: address, options: options) { progress in
                peak.lock.withLock { peak.value = max(peak.value, progress.throttlePercent) }
            }
            print("auto-converge report: \(report)")
            #expect(report.throttlePercent >= 20, "it converged only with the throttle")
            #expect(try source.reason.take()?.get() == .migrated)
            let received = Unchecked(try #require(destination.machine.take()).get().value)
            let ended = Box<StopReason?>()
            Thread.detachNewThread { ended.put(try? received.value.run(timeout: .seconds(30))) }
            let sourceLines = source.output.text.split(separator: "\n").count - 1
            wait(for: "pass \(sourceLines + 3) ", in: destination.output)
            received.value.requestStop()
            #expect(ended.take() == .stopRequested)
            checkEndlessOutput(source.output.text + destination.output.text, kib: guest.kib, boundary: sourceLines + 1)
        } catch {
            // Failing is allowed, but only cleanly: timed out, the guest going on here.
            guard case .timedOut? = error as? MigrationError else { throw error }
            print("auto-converge timed out at a throttle of \(peak.lock.withLock { peak.value })%")
            #expect(peak.lock.withLock { peak.value } >= 20, "auto-converge stepped in before the timeout")
            let lines = source.output.text.split(separator: "\n").count - 1
            wait(for: "pass \(lines + 3) ", in: source.output)
            source.machine.requestStop()
            #expect(try source.reason.take()?.get() == .stopRequested)
            checkEndlessOutput(source.output.text, kib: guest.kib, boundary: lines)
            _ = destination.machine.take()
        }
    }

    // MARK: Failures: the guest goes on at the source

    /// Runs `guest`, lets `inject` fail a migration of it, and checks that the
    /// guest goes on at the source: three more passes, with the right sums.
    func sourceSurvives(_ name: String, guest: Guest = Guest(), inject: (Machine, MigrationAddress) throws -> Void) throws {
        let address = MigrationAddress.unix(path: Self.socketPath(name))
        let source = try startSource(guest)
        wait(for: "pass 2 ", in: source.output)
        try inject(source.machine, address)
        #expect(source.machine.runState == .running)
        let lines = source.output.text.split(separator: "\n").count - 1
        wait(for: "pass \(lines + 3) ", in: source.output)
        source.machine.requestStop()
        #expect(try source.reason.take()?.get() == .stopRequested)
        #expect(source.output.text.contains("pass \(lines + 3) "), "the guest went on after the failed migration")
        checkEndlessOutput(source.output.text, kib: guest.kib, boundary: lines)
    }

    /// A destination of our own making: accepts, lets `script` talk to the source, closes.
    func fakeDestination(at address: MigrationAddress, _ script: @escaping @Sendable (MigrationConnection) -> Void) -> Box<Bool> {
        let done = Box<Bool>()
        let listening = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            guard let listener = try? MigrationSocket.listen(address) else {
                listening.signal()
                return done.put(false)
            }
            listening.signal()
            defer { close(listener) }
            guard let fd = try? MigrationSocket.accept(listener, timeout: .seconds(30)) else { return done.put(false) }
            script(MigrationConnection(fd: fd, receiveTimeout: .seconds(10)))
            done.put(true)
        }
        listening.wait()
        return done
    }

    @Test func aNewerDestinationVersionIsRefused() throws {
        try sourceSurvives("version") { machine, address in
            let fake = fakeDestination(at: address) { connection in
                try? connection.sendStreamHeader(version: MigrationWire.version + 1)
                _ = try? connection.receiveStreamHeader()
                _ = try? connection.receive()
            }
            #expect {
                try machine.migrate(to: address)
            } throws: { error in
                guard case .wire(.unsupportedVersion(found: 2, supported: 1)) = error as? MigrationError else { return false }
                return true
            }
            _ = fake.take()
        }
    }

    @Test func theDestinationDiesMidTransfer() throws {
        try sourceSurvives("dies") { machine, address in
            let fake = fakeDestination(at: address) { connection in
                try? connection.sendStreamHeader()
                try? connection.receiveStreamHeader()
                guard case .hello(var hello)? = try? connection.receive() else { return }
                hello.vcpuCount = 0
                try? connection.send(.hello(hello))
                // A few batches in, the destination is gone (as if killed: the socket closes).
                for _ in 0..<3 { _ = try? connection.receive() }
                connection.shutdown()
            }
            #expect(throws: MigrationError.self) { try machine.migrate(to: address) }
            _ = fake.take()
        }
    }

    @Test func aDestinationThatReportsACorruptMessage() throws {
        try sourceSurvives("corrupt") { machine, address in
            let fake = fakeDestination(at: address) { connection in
                try? connection.sendStreamHeader()
                try? connection.receiveStreamHeader()
                guard case .hello(let hello)? = try? connection.receive() else { return }
                try? connection.send(.hello(hello))
                _ = try? connection.receive()
                try? connection.send(.error("message type 2: checksum mismatch (injected)"))
                connection.shutdown()
            }
            #expect {
                try machine.migrate(to: address)
            } throws: { error in
                guard case .peer(let message) = error as? MigrationError else { return false }
                return message.contains("checksum mismatch")
            }
            _ = fake.take()
        }
    }

    @Test func aCPUMismatchOrSmallerRAMIsRefusedByTheDestination() throws {
        try sourceSurvives("refused") { machine, address in
            var options = IncomingMigrationOptions()
            options.cpuDigestOverride = "cpuid-crc32:0:0"
            let other = startDestination(at: address, options: options)
            #expect {
                try machine.migrate(to: address)
            } throws: { error in
                guard case .peer(let message) = error as? MigrationError else { return false }
                return message.contains("CPU features")
            }
            guard case .failure(.refused)? = other.machine.take() else {
                Issue.record("the destination did not refuse the CPU")
                return
            }
            let small = startDestination(at: address, options: IncomingMigrationOptions(maximumMemory: 16 << 20))
            #expect {
                try machine.migrate(to: address)
            } throws: { error in
                guard case .peer(let message) = error as? MigrationError else { return false }
                return message.contains("at most 16777216")
            }
            _ = small.machine.take()
        }
    }

    @Test func aCorruptStreamIsRefusedByTheDestination() throws {
        // The destination's side of a flipped bit: a checksum error, said back to the source.
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let source = MigrationConnection(fd: fds[0], receiveTimeout: .seconds(10))
        let destination = Unchecked(MigrationConnection(fd: fds[1], receiveTimeout: .seconds(10)))
        let result = Box<MigrationError?>()
        Thread.detachNewThread {
            do throws(MigrationError) {
                _ = try Machine.receiveMigration(over: destination.value)
                result.put(nil)
            } catch { result.put(error) }
        }
        try source.sendStreamHeader()
        try source.receiveStreamHeader()
        let digest = try Machine.migrationCPUDigest()
        try source.send(
            .hello(MigrationHello(cpuDigest: digest, memoryRegions: [.init(base: 0, size: 1 << 20)], vcpuCount: 1, memoryHandover: false)))
        _ = try source.receive()
        var batch = PageBatch()
        batch.appendPage(address: 0x1000) { bytes in
            bytes.append(contentsOf: repeatElement(0x5a, count: 4096))
            return true
        }
        var frame = MigrationMessage.pages(batch).frame()
        frame[200] ^= 1
        _ = frame.withUnsafeBytes { send(fds[0], $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard case .wire(.checksumMismatch(type: 2, _, _))? = result.take() else {
            Issue.record("the destination took a corrupt batch")
            return
        }
        guard case .error(let reason) = try source.receive() else {
            Issue.record("the source was not told why")
            return
        }
        #expect(reason.hasPrefix("migration stream: message type 2: checksum mismatch"))
    }
}
