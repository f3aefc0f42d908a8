import Devices
import Firmware
import Foundation
import SwiftVMM
import Testing
import VMCore
import VMMTesting

/// Every feature of the exit-scripting API, each asserting what the guest did
/// with what the test gave it.
@Suite(.serialized) struct TestVMTests {
    @Test func aVMFromMachineCodeRunsToItsDebugExit() throws {
        // mov $0x2a,%al; out %al,$0xf4; hlt
        let vm = try TestVM(code: [0xb0, 0x2a, 0xe6, 0xf4, 0xf4])
        let exit = try vm.run(until: .debugExit())
        #expect(exit == .ioOut(port: 0xf4, size: 1, count: 1, data: IOData(value: 0x2a, size: 1)))
        #expect(try vm.registers().rip == 0x7c04)
        #expect(try vm.runToCompletion() == .debugExit(status: 0x2a))
    }

    @Test func withSeveralVCPUsTheTestDrivesVCPU0AndTheOthersRunByThemselves() throws {
        let vm = try TestVM(FirmwareImage.protectedSmp, vcpus: 3)
        var bootstrapText = ""
        while true {
            let exit = try vm.nextExit()
            if case .ioOut(0x3f8, 1, 1, let data) = exit { bootstrapText.append(Character(Unicode.Scalar(UInt8(data.value)))) }
            if ExitPredicate.debugExit().matches(exit) { break }
        }
        #expect(try vm.runToCompletion() == .debugExit(status: 3))
        #expect(bootstrapText == "cpu 00 bsp\nsmp: 03 cpus\n", "vCPU 0's own exits only")
        let lines = vm.serialText.split(separator: "\n")
        #expect(lines.count == 4 && lines.contains("cpu 01 ap") && lines.contains("cpu 02 ap"), "\(vm.serialText)")
    }

    @Test func nextExitReturnsEachExitInOrder() throws {
        let vm = try TestVM(FirmwareImage.realHello)
        var text = ""
        while case .ioOut(0x3f8, 1, 1, let data) = try vm.nextExit() {
            text.append(Character(Unicode.Scalar(UInt8(data.value))))
        }
        #expect(text == "Hello from real mode!\n")
        #expect(vm.pendingExit == .ioOut(port: 0xf4, size: 4, count: 1, data: IOData(value: 0, size: 4)))
        #expect(vm.trace.count == 23)
    }

    @Test func scriptedDevicesAnswerAndSeeWhatTheGuestComputed() throws {
        let vm = try TestVM(TestGuest.longScriptedDevices)
        var portWrites: [UInt64] = []
        var mmioWrites: [MMIOAccess] = []
        try vm.onPorts(0x700...0x701) { access in
            switch access {
            case .read(0x700, 4): return 0x1000
            case .write(0x701, 4, let value): portWrites.append(value)
            default: break
            }
            return nil
        }
        try vm.onMMIO(0xd000_0000..<0xd000_1000) { access in
            if case .read(0xd000_0000, 4) = access { return 7 }
            mmioWrites.append(access)
            return nil
        }
        #expect(try vm.runToCompletion() == .debugExit(status: 0x1000 + 7))
        #expect(portWrites == [0x1001])
        #expect(mmioWrites == [.write(address: 0xd000_0004, size: 4, value: 21)])
    }

    @Test func aPendingReadCanBeAnsweredByTheTest() throws {
        let vm = try TestVM(TestGuest.longScriptedDevices)
        #expect(try vm.run(until: .ioIn(port: 0x700)) == .ioIn(port: 0x700, size: 4, count: 1))
        try vm.answer(0x20)
        #expect(try vm.run(until: .ioOut(port: 0x701)) == .ioOut(port: 0x701, size: 4, count: 1, data: IOData(value: 0x21, size: 4)))
        let read = try vm.run(until: .mmio(0xd000_0000..<0xd000_0004))
        #expect(read == .mmioRead(address: GuestAddress(0xd000_0000), size: 4))
        try vm.answer(3)
        let write = try vm.run(until: .mmio(0xd000_0004..<0xd000_0008))
        #expect(write == .mmioWrite(address: GuestAddress(0xd000_0004), data: IOData(value: 9, size: 4)))
        #expect(try vm.runToCompletion() == .debugExit(status: 0x23))
        #expect(throws: VMTestError.self) { try vm.answer(1) }
    }

    @Test func aFakeUARTThatReportsItsFIFOFullMakesTheDriverWait() throws {
        let vm = try TestVM(TestGuest.realUartDriver)
        var polls = 0
        var sent: [UInt8] = []
        try vm.onPorts(0x3f8...0x3ff) { access in
            switch access {
            case .read(0x3fd, _):
                polls += 1
                return polls % 4 == 0 ? 0b0110_0000 : 0  // THRE only on every fourth poll
            case .write(0x3f8, _, let value):
                sent.append(UInt8(value))
                return nil
            default:
                return nil
            }
        }
        #expect(try vm.runToCompletion() == .debugExit(status: 0))
        #expect(sent == Array("OK\n".utf8))
        #expect(polls == 12, "four polls per byte")
        #expect(vm.serialText.isEmpty, "the real COM1 was replaced")
    }

    @Test func aUARTThatNeverDrainsSendsTheDriverDownItsTimeoutPath() throws {
        let vm = try TestVM(TestGuest.realUartDriver)
        var polls = 0
        try vm.onPorts(0x3fd...0x3fd) { _ in
            polls += 1
            return 0
        }
        #expect(try vm.runToCompletion() == .debugExit(status: 2))
        #expect(polls == 16)
    }

    @Test func serialHelpersTypeAndWaitForOutput() throws {
        let vm = try TestVM(FirmwareImage.realSerialIn)
        #expect(vm.typeSerial("quiet\n") == 6)
        try vm.run(untilOutputContains: "QUIET\n")
        #expect(vm.serialBytes == Array("QUIET\n".utf8))
        #expect(try vm.runToCompletion() == .debugExit(status: 0))
    }

    @Test func waitingForOutputThatNeverComesFailsWhenTheMachineStops() throws {
        let vm = try TestVM(FirmwareImage.realHello)
        let error = try #require(throws: VMTestError.self) { try vm.run(untilOutputContains: "Goodbye") }
        guard case .stoppedBeforeMatch(.debugExit(0), _) = error.kind else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(error.description.contains("last exits:"))
    }

    @Test func aSpinningGuestIsStoppedAtItsDeadlineWithItsRIPAndTrace() throws {
        let vm = try TestVM(code: [0xb0, 0x01, 0xe6, 0x80, 0xeb, 0xfe])  // out to 0x80, then jmp .
        let start = ContinuousClock.now
        let error = try #require(throws: VMTestError.self) { try vm.runToCompletion(timeout: .milliseconds(300)) }
        let elapsed = ContinuousClock.now - start
        guard case .timeout(.milliseconds(300), _) = error.kind else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(error.rip == 0x7c04)
        #expect(error.traceTail.contains("OUT port 0x80, 1 byte: 0x1/1"), "\(error.traceTail)")
        #expect(elapsed >= .milliseconds(300) && elapsed < .seconds(5))
        // The kick does not leak into the next run.
        try vm.modifyRegisters { $0.rip = 0x7c00 }
        #expect(
            try vm.run(until: .io(port: 0x80), timeout: .seconds(5))
                == .ioOut(port: 0x80, size: 1, count: 1, data: IOData(value: 1, size: 1)))
    }

    @Test func hardwareBreakpointStopsBeforeTheInstructionWithItsRegisters() throws {
        let vm = try TestVM(TestGuest.longBreakpoint)
        try vm.setBreakpoint(at: 0x10_0040)
        let exit = try vm.run(until: .debugTrap(at: 0x10_0040))
        guard case .debug(let info) = exit else { return }
        #expect(info.exception == 1)
        let registers = try vm.registers()
        #expect(registers.rip == 0x10_0040)
        #expect(registers.rax == 0x1234, "stopped before `add`")
        #expect(try vm.step() == 0x10_0044, "add $1,%rax is 4 bytes")
        #expect(try vm.registers().rax == 0x1235)
        #expect(try vm.step() == 0x10_0047)
        #expect(try vm.registers().rbx == 0x1235)
        try vm.removeBreakpoint(at: 0x10_0040)
        let end = try vm.runToCompletion()
        #expect(end == .shutdown || end.isFailure, "ud2 with no IDT")
        #expect(try vm.registers().rip == 0x10_0047, "the fault is at the ud2 found by stepping")
    }

    @Test(
        .enabled(
            if: TestVM.softwareBreakpointsWork,
            "SKIPPED: this host's KVM (e.g. the PVM back end) does not deliver int3 breakpoints to the VMM"))
    func softwareBreakpointHitsAndTheGuestContinuesPastIt() throws {
        let vm = try TestVM(FirmwareImage.realHello)
        try vm.setSoftwareBreakpoint(at: 0x7c06)  // the `out %al,%dx` of the print loop
        var hits = 0
        while true {
            let exit = try vm.run(until: .debugTrap() || .debugExit())
            guard case .debug(let info) = exit else { break }
            #expect(info.exception == 3 && info.pc == 0x7c06)
            hits += 1
        }
        #expect(hits == "Hello from real mode!\n".count)
        #expect(vm.serialText == "Hello from real mode!\n", "the original instruction ran at every hit")
        #expect(try vm.read(count: 1, at: 0x7c06) == [0xcc])
        try vm.removeSoftwareBreakpoint(at: 0x7c06)
        #expect(try vm.read(count: 1, at: 0x7c06) == [0xee])
    }

    @Test(.enabled(if: !TestVM.softwareBreakpointsWork, "this host delivers int3 breakpoints; the test above covers them"))
    func aHostThatCannotDeliverInt3SaysSoClearly() throws {
        let vm = try TestVM(TestGuest.longBreakpoint)
        try vm.setSoftwareBreakpoint(at: 0x10_0040)
        let error = try #require(throws: VMTestError.self) { try vm.run(until: .debugTrap(), timeout: .seconds(5)) }
        #expect(error.description.contains("cannot deliver the int3 of the software breakpoint at 0x100040"), "\(error)")
    }

    @Test func singleSteppingVisitsEveryInstruction() throws {
        let vm = try TestVM(TestGuest.longBreakpoint)
        var visited: [UInt64] = []
        for _ in 0..<4 { visited.append(try vm.step()) }
        #expect(visited == [0x10_0005, 0x10_0040, 0x10_0044, 0x10_0047], "mov, jmp, add, mov")
    }

    @Test func hypercallsReportProgressLogsRequestsAndCompletion() throws {
        let vm = try TestVM(TestGuest.longHypercalls)
        #expect(try vm.runUntilHypercall() == .progress(1))
        #expect(try vm.runUntilHypercall() == .log("hello from the guest"))
        #expect(try vm.runUntilHypercall() == .request(number: 0x100, arguments: [20, 22, 0, 0]))
        try vm.answer(42)
        #expect(try vm.runUntilHypercall() == .progress(2))
        #expect(try vm.runToCompletion() == .debugExit(status: 0))
        #expect(vm.guestLog == ["hello from the guest"])
        #expect(
            vm.hypercalls == [
                .progress(1), .log("hello from the guest"), .request(number: 0x100, arguments: [20, 22, 0, 0]), .progress(2),
                .done(status: 0),
            ], "the request the test answered is recorded too")
    }

    @Test func aWrongAnswerFromAHandlerStillFailsTheRunAtTheGuestsAssertion() throws {
        let vm = try TestVM(TestGuest.longHypercalls)
        vm.onHypercall { call in
            if case .request(0x100, let arguments) = call { return arguments[0] + arguments[1] + 1 }
            return nil
        }
        let error = try #require(throws: VMTestError.self) { try vm.runToCompletion() }
        let expected = GuestAssertion(line: 13, expected: 42, actual: 43, file: "longmode/hypercalls.S", message: "")
        #expect(error.kind == .guestAssertionFailed(expected), "line 13 of hypercalls.S is the check")
        #expect(error.description.contains("guest assertion failed at longmode/hypercalls.S:13: expected 0x2a, got 0x2b"), "\(error)")
    }

    @Test func aTestThatTakesOverGuestAssertionsFindsThemInTheHypercalls() throws {
        let vm = try TestVM(TestGuest.longHypercalls)
        vm.guestAssertionsFailTheRun = false
        vm.onHypercall { call in
            if case .request(0x100, let arguments) = call { return arguments[0] + arguments[1] + 1 }
            return nil
        }
        #expect(try vm.runToCompletion() == .debugExit(status: 0))
        let expected = GuestAssertion(line: 13, expected: 42, actual: 43, file: "longmode/hypercalls.S", message: "")
        #expect(vm.hypercalls.contains(.assertionFailed(expected)))
    }

    @Test func aFailedGuestAssertionFailsTheTestWithItsValues() throws {
        let vm = try TestVM(TestGuest.longFailingAssertion)
        let error = try #require(throws: VMTestError.self) { try vm.runToCompletion() }
        guard case .guestAssertionFailed(let assertion) = error.kind else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(assertion.line == 9, "line 9 of failing-assertion.S is the check")
        #expect(assertion.expected == 43 && assertion.actual == 42)
        #expect(assertion.file == "longmode/failing-assertion.S")
    }

    @Test func aFreestandingCGuestUsesTheHypercallHeader() throws {
        let vm = try TestVM(TestGuest.longHypercallsC)
        var asked: [UInt64] = []
        vm.onHypercall { call in
            guard case .request(0x101, let arguments) = call else { return nil }
            asked.append(arguments[0])
            var (a, b): (UInt64, UInt64) = (0, 1)
            for _ in 0..<arguments[0] { (a, b) = (b, a + b) }
            return a
        }
        #expect(try vm.runToCompletion() == .debugExit(status: 0), "no mismatches")
        #expect(asked == Array(1...10))
        #expect(vm.guestLog == ["fibonacci from C"])
    }

    @Test func memoryAndRegistersCanBeSetBeforeTheGuestRuns() throws {
        let vm = try TestVM(FirmwareImage.longMemory)
        try vm.writeInteger(UInt64(0x50), at: 0x20_0000)
        #expect(try vm.runToCompletion() == .halted(interruptsEnabled: false))
        #expect(try vm.readInteger(at: 0x20_0008, as: UInt64.self) == 0xa1)
        #expect(try vm.registers().rbx == 0x50)
        #expect(throws: VMTestError.self) { _ = try vm.read(count: 8, at: 0xffff_fff0_0000) }
    }

    // The README's worked examples, run as written there.

    @Test func readmeExampleBootSectorGreets() throws {
        let vm = try TestVM(TestGuest.realBoot)
        #expect(TestGuest.realBoot.bytes.count == 512 && TestGuest.realBoot.bytes.suffix(2) == [0x55, 0xaa])
        try vm.run(untilOutputContains: "Hello", timeout: .seconds(2))
        #expect(try vm.runToCompletion() == .debugExit(status: 0))
        #expect(vm.serialText == "Hello from real mode!\n")
    }

    @Test func readmeExampleFindTheFault() throws {
        let vm = try TestVM(TestGuest.longBreakpoint)
        try vm.setBreakpoint(at: TestGuest.longBreakpoint.symbol("target"))
        try vm.run(until: .debugTrap(at: 0x10_0040))
        #expect(try vm.registers().rax == 0x1234)
        var rip = try vm.registers().rip
        var stopped: VMTestError?
        while stopped == nil {
            do { rip = try vm.step() } catch { stopped = error }
        }
        #expect(rip == 0x10_0047, "the ud2")
        guard case .stoppedBeforeMatch(let reason, _) = stopped?.kind else {
            Issue.record("expected the machine to stop, got \(String(describing: stopped))")
            return
        }
        #expect(reason.isFailure)
    }

    @Test func badRequestsAreErrorsNotCrashes() throws {
        let vm = try TestVM(FirmwareImage.realHello)
        #expect(throws: VMTestError.self) { try vm.onMMIO(0x1000..<0x2000) { _ in nil } }
        for address: UInt64 in [0x1000, 0x2000, 0x3000, 0x4000] { try vm.setBreakpoint(at: address) }
        #expect(throws: VMTestError.self) { try vm.setBreakpoint(at: 0x5000) }
        #expect(throws: VMTestError.self) { _ = try TestVM(code: []) }
    }
}
