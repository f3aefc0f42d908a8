import Logging
import Testing
import VMMTesting

/// A log handler that keeps what a `TestVM`'s machine logs.
final class CapturedLog: LogHandler, @unchecked Sendable {
    // Unchecked: each test's VM logs from the test's own thread only.
    final class Box: @unchecked Sendable { var messages: [String] = [] }
    let box: Box
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    init(box: Box) { self.box = box }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { box.messages.append("\(event.level): \(event.message)") }
}

/// What a user outside this repository reaches for (issue 12): single steps
/// over every kind of exit, guest symbols, syncs, assertions with file and
/// message, interrupts, loggers, any machine configuration, and the names and
/// output of the API. Only `import VMMTesting` above: the re-exports carry
/// `VMExit`, `Registers`, `FirmwareImage`, `MachineConfiguration`, `Logger`...
@Suite(.serialized) struct TestVMUserFacingTests {
    static let stepGuest = TestGuest.longStepExits

    static func address(_ symbol: String) throws -> UInt64 {
        try #require(stepGuest.symbol(symbol), "step-exits.S defines \(symbol)")
    }

    /// A VM at step-exits.S's start, with port 0x700 reading 0x55 and the
    /// MMIO page reading 7 and recording writes.
    static func steppingVM(mmioWrites: @escaping (MMIOAccess) -> Void = { _ in }) throws -> TestVM {
        let vm = try TestVM(stepGuest)
        try vm.onPorts(0x700...0x700) { access in
            if case .read = access { return 0x55 }
            return nil
        }
        try vm.onMMIO(0xd000_0000..<0xd000_1000) { access in
            if case .read = access { return 7 }
            mmioWrites(access)
            return nil
        }
        return vm
    }

    @Test func aStepOverEachKindOfExitRunsThatInstructionAndNoOther() throws {
        var writes: [MMIOAccess] = []
        let vm = try Self.steppingVM { writes.append($0) }
        vm.onHypercall { call in
            if case .request(0x100, let arguments) = call { return arguments[0] * 11 }
            return nil
        }
        func stepTo(_ label: String) throws -> UInt64 {
            let target = try Self.address(label)
            for _ in 0..<8 where try vm.registers().rip != target { try vm.step() }
            return try vm.registers().rip
        }
        func r8() throws -> UInt64 { try vm.registers().r8 }

        #expect(try stepTo("port_out") == Self.address("port_out"))
        #expect(try vm.step() == Self.address("after_port_out"), "OUT to 0x80")
        #expect(try r8() == 0, "the inc after the OUT has not run")
        #expect(vm.trace.entries.last.map { ExitTrace.describe($0.exit) } != nil)

        #expect(try stepTo("port_in") == Self.address("port_in"))
        #expect(try vm.step() == Self.address("after_port_in"), "IN from 0x700")
        #expect(try vm.registers().rax & 0xffff_ffff == 0x55, "the IN got its value")
        #expect(try r8() == 1)

        #expect(try stepTo("mmio_read") == Self.address("mmio_read"))
        #expect(try vm.step() == Self.address("after_mmio_read"), "MMIO read")
        #expect(try vm.registers().rcx == 7)
        #expect(try r8() == 2)

        #expect(try vm.step() == Self.address("mmio_write"))
        #expect(try vm.step() == Self.address("after_mmio_write"), "MMIO write")
        #expect(writes == [.write(address: 0xd000_0004, size: 4, value: 7)])
        #expect(try r8() == 3)

        #expect(try stepTo("hypercall") == Self.address("hypercall"))
        #expect(try vm.step() == Self.address("after_hypercall"), "hypercall")
        #expect(try vm.registers().rax == 77, "the handler's answer")
        #expect(try r8() == 4)
        guard case .request(0x100, let arguments) = vm.hypercalls.last else {
            Issue.record("no request in \(vm.hypercalls)")
            return
        }
        #expect(arguments.first == 7)

        #expect(try vm.step() == Self.address("halt"))
        // KVM reports the step over HLT as a finished instruction, before the
        // vCPU would sleep: the step ends after it, as any other.
        #expect(try vm.step() == Self.address("after_halt"), "HLT")
        #expect(try r8() == 5, "the inc after the hypercall ran, the one after HLT not")
        #expect(try vm.runToCompletion() == .halted(interruptsEnabled: false), "the second HLT, not single-stepped")
        #expect(try r8() == 6)
    }

    @Test func aStepWithAnAccessPendingFinishesThatInstructionOnly() throws {
        let vm = try Self.steppingVM()
        #expect(try vm.run(until: .ioOut(port: 0x80)) == .ioOut(port: 0x80, size: 1, count: 1, data: IOData(value: 0x2a, size: 1)))
        #expect(try vm.step() == Self.address("after_port_out"))
        #expect(try vm.registers().r8 == 0)

        try vm.run(until: .ioIn(port: 0x700))
        try vm.answer(0x66)
        #expect(try vm.step() == Self.address("after_port_in"))
        #expect(try vm.registers().rax & 0xffff_ffff == 0x66, "the test's answer, not the device's")
        #expect(try vm.registers().r8 == 1)

        #expect(try vm.run(until: .mmio(0xd000_0000..<0xd000_0004)) == .mmioRead(address: GuestAddress(0xd000_0000), size: 4))
        try vm.answer(9)
        #expect(try vm.step() == Self.address("after_mmio_read"))
        #expect(try vm.registers().rcx == 9)
        #expect(try vm.registers().r8 == 2)

        _ = try vm.runUntilHypercall()
        try vm.answer(5)
        #expect(try vm.step() == Self.address("after_hypercall"))
        #expect(try vm.registers().rax == 5)
        #expect(try vm.registers().r8 == 4)
        #expect(vm.hypercalls.count == 1, "the answered request is recorded")
    }

    @Test func aStepFromABreakpointOnAnAccessRunsOnlyThatInstruction() throws {
        let vm = try Self.steppingVM()
        try vm.setBreakpoint(at: Self.stepGuest.symbol("port_in"))
        try vm.run(until: .debugTrap(at: Self.address("port_in")))
        #expect(try vm.registers().r8 == 1)
        #expect(try vm.step() == Self.address("after_port_in"))
        #expect(try vm.registers().rax & 0xffff_ffff == 0x55)
        #expect(try vm.registers().r8 == 1, "the inc after the IN has not run")
        #expect(try vm.step() == Self.address("after_port_in") + 3, "inc %r8 is 3 bytes")
        #expect(try vm.registers().r8 == 2)
    }

    @Test func guestSymbolsComeFromEachGuestsSymbolTable() throws {
        #expect(TestGuest.longBreakpoint.symbol("_start") == 0x10_0000)
        #expect(TestGuest.longBreakpoint.symbol("target") == 0x10_0040, "a local label too")
        #expect(TestGuest.longBreakpoint.symbol("no_such_label") == nil)
        #expect(FirmwareImage.realHello.symbol("_start") == 0x7c00)
        #expect(FirmwareImage.elfHello.symbol("_start") != nil, "ELF64 guests")
        let multiboot = try #require(FirmwareImage.all.first { $0.format == .multiboot })
        #expect(multiboot.symbol("_start").map { (0x10_0000..<0x20_0000).contains($0) } == true, "ELF32 guests")

        let vm = try TestVM(TestGuest.longBreakpoint)
        try vm.setBreakpoint(at: TestGuest.longBreakpoint.symbol("target"))
        try vm.run(until: .debugTrap(at: 0x10_0040))
        #expect(try vm.registers().rax == 0x1234)
        let error = try #require(throws: VMTestError.self) { try vm.setBreakpoint(at: TestGuest.longBreakpoint.symbol("nope")) }
        #expect(error.description.contains("no such symbol"), "\(error)")
    }

    @Test func syncStagesAreAwaitedInOrderAndAssertionsCarryFileAndMessage() throws {
        let vm = try TestVM(TestGuest.longSyncAndAssert)
        try vm.awaitSync(1)
        #expect(try vm.registers().rbx == 10)
        try vm.awaitSync(2)
        #expect(try vm.registers().rbx == 20)
        #expect(vm.guestLog == ["stage"], "hypercalls between syncs are handled")
        try vm.awaitSync(3)
        try vm.answer(0x34)
        let error = try #require(throws: VMTestError.self) { try vm.runToCompletion() }
        let expected = GuestAssertion(
            line: 17, expected: 0x33, actual: 0x34, file: "longmode/sync-and-assert.S", message: "the answer to stage 3")
        #expect(error.kind == .guestAssertionFailed(expected))
        #expect(
            error.description.contains(
                "guest assertion failed at longmode/sync-and-assert.S:17: the answer to stage 3: expected 0x33, got 0x34"),
            "\(error)")
        #expect(vm.hypercalls.prefix(4) == [.sync(1), .log("stage"), .sync(2), .sync(3)])

        let passing = try TestVM(TestGuest.longSyncAndAssert)
        for stage: UInt64 in 1...3 { try passing.awaitSync(stage) }
        try passing.answer(0x33)
        #expect(try passing.runToCompletion() == .debugExit(status: 0))

        let outOfOrder = try TestVM(TestGuest.longSyncAndAssert)
        let skipped = try #require(throws: VMTestError.self) { try outOfOrder.awaitSync(2) }
        #expect(skipped.kind == .unexpectedSync(expected: 2, got: 1))
    }

    @Test func anInterruptInjectedOnTheMinimalPlatformReachesItsHandler() throws {
        let log = CapturedLog.Box()
        let vm = try TestVM(TestGuest.realInterrupts, logger: Logger(label: "test") { _ in CapturedLog(box: log) })
        let refused = try #require(throws: VMTestError.self) { try vm.injectInterrupt(vector: 0x35) }
        #expect(refused.description.contains("interrupts disabled"), "the guest starts with cli")
        #expect(throws: VMTestError.self) { try vm.raiseIRQ(5) }
        try vm.awaitSync(1)
        try vm.injectInterrupt(vector: 0x35)
        try vm.awaitSync(2)
        #expect(try vm.registers().rsi == 0x35)
        #expect(try vm.runToCompletion() == .debugExit(status: 0x35))
        #expect(
            log.messages.contains { $0.contains("write to unknown port 0x20") },
            "the PIC setup on a platform with no PIC goes to the test's logger: \(log.messages)")
    }

    @Test func anNMIReachesItsHandler() throws {
        let vm = try TestVM(TestGuest.realInterrupts, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        try vm.awaitSync(1)
        try vm.injectNMI()
        try vm.awaitSync(3)
        #expect(try vm.registers().rsi == 2)
        #expect(try vm.runToCompletion() == .debugExit(status: 2))
    }

    @Test func anIRQRaisedOnThePCPlatformArrivesAtTheVectorTheGuestProgrammed() throws {
        let vm = try TestVM(TestGuest.realInterrupts, platform: .pc)
        #expect(throws: VMTestError.self) { try vm.injectInterrupt(vector: 0x35) }
        try vm.awaitSync(1)
        try vm.raiseIRQ(5)
        try vm.awaitSync(2)
        #expect(try vm.registers().rsi == 0x35)
        #expect(try vm.runToCompletion() == .debugExit(status: 0x35))
    }

    @Test func aTestVMCanBeBuiltOnAnyMachineConfiguration() throws {
        let log = CapturedLog.Box()
        var configuration = MachineConfiguration(
            guest: .firmware(FirmwareImage.realHello), memorySize: 2 << 20, logger: Logger(label: "test") { _ in CapturedLog(box: log) },
            platform: .pc)
        let vm = try TestVM(configuration: configuration)
        #expect(vm.machine.platform == .pc)
        #expect(try vm.runToCompletion() == .debugExit(status: 0))
        #expect(vm.serialText == "Hello from real mode!\n")

        configuration.serialOutput = DiscardingOutput()
        let error = try #require(throws: VMTestError.self) { try TestVM(configuration: configuration) }
        #expect(error.description.contains("SerialBufferOutput"), "\(error)")
    }

    @Test func namesAndOutputTellTheDebugExitPortFromADebugTrap() throws {
        #expect(ExitPredicate.debugExit(status: 1).description == "a write to the debug-exit port 0xf4 with status 0x1")
        #expect(ExitPredicate.debugTrap(at: 0x7c00).description == "a debug trap (breakpoint or single step) at 0x7c00")
        let vm = try TestVM(FirmwareImage.realHello)
        let error = try #require(throws: VMTestError.self) { try vm.run(until: .debugTrap(at: 0x7c00)) }
        #expect(error.description.contains("the machine stopped (guest wrote 0x0 to the debug-exit port) before a debug trap"), "\(error)")
        #expect(
            ExitTrace.describe(.mmioRead(address: GuestAddress(0xfee0_0020), size: 4)) == "MMIO read 0xfee00020, 4 bytes"
                && ExitTrace.describe(.ioIn(port: 0x3fd, size: 1, count: 1)) == "IN port 0x3fd, 1 byte")
        #expect(error.traceTail.contains("OUT port 0x3f8, 1 byte: 0x6c/1"), "\(error.traceTail)")
    }
}

/// A COM1 that is not a `SerialBufferOutput`.
private final class DiscardingOutput: SerialOutput {
    func write(_ byte: UInt8) {}
}
