import Devices
import Firmware
import Foundation
import Logging
import SwiftVMM
import VMCore
import VMMTesting
import XCTest

/// Guests that attack the VMM, each with the VMM's exact behaviour, and a
/// check that the VMM's file descriptors and mapped memory are the same
/// after the machine is gone as before it was built.
///
/// XCTest, not Swift Testing, on purpose: XCTest runs its tests one at a time
/// in a process of its own (SwiftPM runs the two libraries separately), so
/// nothing else opens files or maps memory while a test counts them.
final class HostileGuestTests: XCTestCase {
    // MARK: Ports

    func testEveryPortReadAndWrittenLeavesTheVMMRunningAndLogsEachUnknownPortOnce() throws {
        try withResourceCheck {
            let log = MessageLog()
            let output = SerialBufferOutput()
            let machine = try Machine(
                MachineConfiguration(
                    guest: .firmware(.longPortSweep), memorySize: 16 << 20, serialOutput: output, logger: log.logger))
            XCTAssertEqual(try machine.run(timeout: .seconds(120)), .debugExit(status: 0x50))
            // The write-back to THR of the byte RBR read (0: no input) transmits one NUL.
            XCTAssertEqual(output.text, "\u{0}port sweep done\n")
            XCTAssertEqual(try machine.registers().rbx & 0xffff_ffff, 0x10000 - 4)  // all but the debug-exit port

            // The minimal platform's ports: COM1, COM2, POST codes, and debug exit (skipped).
            let com1 = Int(PortMap.com1.base)..<Int(PortMap.com1.base + PortMap.com1.length)
            let com2 = Int(PortMap.com2.base)..<Int(PortMap.com2.base + PortMap.com2.length)
            let debugExit = Int(PortMap.debugExit.base)..<Int(PortMap.debugExit.base + PortMap.debugExit.length)
            let claimed = Set(com1).union(com2).union([Int(PortMap.postCode.base)])
            let table = try machine.memory.read(count: 0x10000, at: GuestAddress(0x20_0000))
            let unclaimed = (0..<0x10000).filter { !claimed.contains($0) && !debugExit.contains($0) }
            XCTAssertEqual(unclaimed.count, 0x10000 - 4 - 8 - 8 - 1)
            XCTAssertEqual(unclaimed.filter { table[$0] != 0xff }, [], "unclaimed ports read all ones")
            XCTAssertEqual(machine.ports.unclaimedReads, unclaimed.count)
            XCTAssertEqual(machine.ports.unclaimedWrites, unclaimed.count)
            // One line per unknown port, for its first access (the read), and none for the write.
            XCTAssertEqual(log.count("read from unknown port"), unclaimed.count)
            XCTAssertEqual(log.distinctPorts, unclaimed.count)
            XCTAssertEqual(log.count("write to unknown port"), 0)
        }
    }

    // MARK: MMIO

    func testMMIOAcrossThePhysicalAddressSpaceReadsAllOnesAndIsIgnored() throws {
        try withResourceCheck {
            let log = MessageLog()
            let ram: UInt64 = 16 << 20
            let machine = try Machine(
                MachineConfiguration(
                    guest: .firmware(.longMmioSweep), memorySize: ram, serialOutput: SerialBufferOutput(), logger: log.logger))
            var registers = try machine.registers()
            registers.rdi = ram
            try machine.setRegisters(registers)
            XCTAssertEqual(try machine.run(timeout: .seconds(120)), .debugExit(status: 0x60))
            registers = try machine.registers()
            let maxPhysicalAddressBits = registers.r14
            XCTAssertGreaterThanOrEqual(maxPhysicalAddressBits, 36)
            XCTAssertLessThanOrEqual(maxPhysicalAddressBits, 52)
            let below4G = ((1 << 32) - ram) / (2 << 20)
            let expected = below4G + (maxPhysicalAddressBits - 32)
            XCTAssertEqual(registers.r13, expected, "accesses")
            XCTAssertEqual(registers.r12, 0, "reads that were not all ones")
            XCTAssertEqual(machine.mmio.unclaimedReads, Int(expected))
            XCTAssertEqual(machine.mmio.unclaimedWrites, Int(expected))
            // Each address is in a page of its own: one line each, for its read.
            XCTAssertEqual(log.count("MMIO read from"), Int(expected))
            XCTAssertEqual(log.count("MMIO write to"), 0)
        }
    }

    /// KVM cannot complete an `xsave` into MMIO: the run ends with KVM's
    /// emulation failure, at the instruction, and the VMM reports it.
    func testAnInstructionKVMCannotEmulateAgainstMMIOStopsTheMachineAsAFailure() throws {
        try withResourceCheck {
            let machine = try Machine(MachineConfiguration(guest: .firmware(.longUnemulatedMmio), memorySize: 16 << 20))
            let reason = try machine.run(timeout: .seconds(20))
            guard case .internalError(suberror: 1, _) = reason else {
                return XCTFail("expected KVM's emulation failure (internal error 1), got \(reason)")
            }
            XCTAssertTrue(reason.isFailure)
            XCTAssertEqual(reason.exitStatus, 1)
            let rip = try machine.registers().rip
            XCTAssertEqual(try machine.memory.read(count: 3, at: GuestAddress(rip)), [0x0f, 0xae, 0x27], "RIP at xsave (%rdi)")
        }
    }

    // MARK: COM1

    func testNonsenseUARTSettingsAndAFloodAreTransmittedAndTheVMMKeepsRunning() throws {
        try withResourceCheck {
            let vm = try TestVM(.longUartAbuse)
            XCTAssertEqual(try vm.runToCompletion(timeout: .seconds(60)), .debugExit(status: 0x44))
            let pattern = (0..<4096).map { UInt8(truncatingIfNeeded: $0) }
            XCTAssertEqual(vm.serialBytes, pattern + pattern + Array("uart abuse done\n".utf8))
            let registers = try vm.registers()
            XCTAssertEqual(registers.rbx & 0xff, 0x63, "LSR: DR, OE, THRE, TEMT after the loopback overrun")
            XCTAssertEqual(registers.rbp & 0xff, 0x61, "LSR: OE reported once")
            XCTAssertTrue(vm.machine.serial.hasPendingInput, "the loopback bytes stay in the receive FIFO")
        }
    }

    // MARK: Guests that never finish, or finish badly

    func testASpinWithInterruptsOffIsEndedByTheDeadline() throws {
        try withResourceCheck {
            let output = SerialBufferOutput()
            let machine = try Machine(MachineConfiguration(guest: .firmware(.realSpin), memorySize: 16 << 20, serialOutput: output))
            let started = ContinuousClock.now
            XCTAssertEqual(try machine.run(timeout: .milliseconds(500)), .deadlineExpired)
            XCTAssertLessThan(ContinuousClock.now - started, .seconds(10))
            XCTAssertEqual(output.text, "spinning with interrupts off\n")
            let registers = try machine.registers()
            XCTAssertFalse(registers.interruptsEnabled)
            XCTAssertEqual(try machine.memory.read(count: 2, at: GuestAddress(registers.rip)), [0xeb, 0xfe], "RIP at jmp .")
        }
    }

    func testATripleFaultEndsTheRunAndReleasesEverything() throws {
        try withResourceCheck {
            let vm = try TestVM(.longTripleFault)
            let reason = try vm.runToCompletion()
            switch reason {
            case .shutdown, .internalError(suberror: 1, data: _): break
            default: XCTFail("expected a shutdown or KVM internal error 1, got \(reason)")
            }
            XCTAssertEqual(vm.serialText, "triple fault next\n")
        }
    }

    func testAHaltWithInterruptsOffEndsTheRunAndReleasesEverything() throws {
        try withResourceCheck {
            let vm = try TestVM(.realHalt)
            XCTAssertEqual(try vm.runToCompletion(), .halted(interruptsEnabled: false))
            XCTAssertEqual(vm.serialText, "halting\n")
        }
    }

    // MARK: Resources

    /// Runs `body`, which builds, runs and drops machines, and checks that the
    /// process holds the same file descriptors and mapped memory afterwards.
    func withResourceCheck(file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) throws {
        try Self.warmUp()
        let before = ProcessResources.current()
        try body()
        let after = ProcessResources.current()
        XCTAssertEqual(after.fileDescriptors, before.fileDescriptors, "\(before) -> \(after)", file: file, line: line)
        XCTAssertEqual(after.kvmFileDescriptors, 0, "\(after)", file: file, line: line)
        XCTAssertEqual(after.kvmMappings, 0, "\(after)", file: file, line: line)
        XCTAssertLessThanOrEqual(after.mappedBytes, before.mappedBytes + allocatorSlack, "\(before) -> \(after)", file: file, line: line)
    }

    /// How much mapped memory may stay with the allocator after a test: the
    /// heap does not always shrink back when the memory freed is not at its
    /// top. 1 MiB is far below what a leak of anything a machine maps would
    /// leave (16 MiB of guest RAM; the vCPU's kvm_run pages are counted
    /// exactly above). Under a sanitizer, whose allocator quarantines freed
    /// memory (ASan grows by up to ~8 MiB a test here), only the fds and KVM
    /// mappings are exact: the plain test run checks memory to 9 MiB and a
    /// bit: 1 MiB of heap plus one default thread stack (8 MiB and its guard
    /// page), which glibc keeps cached for reuse after a thread of the test
    /// runner's or the machine's has ended. Still below the 16 MiB of guest
    /// RAM a leaked machine would leave.
    static let allocatorSlack: UInt64 = ProcessResources.underSanitizer ? 64 << 20 : (1 << 20) + (8 << 20) + (64 << 10)
    var allocatorSlack: UInt64 { Self.allocatorSlack }

    /// One machine built, run and dropped before the first count, so that what
    /// the process sets up once (the allocator's arenas, the logging system,
    /// the firmware images) is not counted as a test's.
    nonisolated(unsafe) static var warmedUp = false
    static func warmUp() throws {
        guard !warmedUp else { return }
        warmedUp = true
        let log = MessageLog()
        let machine = try Machine(MachineConfiguration(guest: .firmware(.realHalt), memorySize: 16 << 20, logger: log.logger))
        _ = try machine.run(timeout: .seconds(20))
    }
}

/// Counts what the VMM logs, for tests that count its lines. Keeps counts
/// per kind of line and the ports named, not the lines, so that a test that
/// logs 65,000 lines does not leave the heap grown.
final class MessageLog: @unchecked Sendable {
    private let lock = NSLock()
    private var kinds: [String: Int] = [:]
    private var ports = Set<UInt16>()

    /// How many lines started with `prefix` (one of the prefixes in `kind(of:)`), and distinct ports they named.
    func count(_ prefix: String) -> Int { lock.withLock { kinds[prefix, default: 0] } }
    var distinctPorts: Int { lock.withLock { ports.count } }

    static let prefixes = ["read from unknown port", "write to unknown port", "MMIO read from", "MMIO write to"]

    var logger: Logger {
        var logger = Logger(label: "swiftvmm") { _ in Handler(log: self) }
        logger.logLevel = .info
        return logger
    }

    fileprivate func record(_ line: String) {
        let prefix = Self.prefixes.first { line.hasPrefix($0) } ?? "other"
        // "... unknown port 0x1f (...)": the word after "port".
        let port = prefix.hasSuffix("port") ? line.dropFirst(prefix.count + 1).prefix { $0 != " " } : ""
        lock.withLock {
            kinds[prefix, default: 0] += 1
            if let number = UInt16(port.dropFirst(2), radix: 16) { ports.insert(number) }
        }
    }

    struct Handler: LogHandler {
        let log: MessageLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { log.record(event.message.description) }
    }
}
