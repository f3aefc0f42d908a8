import Devices
import Firmware
import SwiftVMM
import Testing
import VMCore
import VMMTesting

/// One guest from `firmware/`, run to completion in a `TestVM`.
private struct GuestRun {
    let vm: TestVM
    let reason: StopReason
    var machine: Machine { vm.machine }
    var output: SerialBufferOutput { vm.serialOutput }

    /// Builds a 16 MiB VM for `image`, lets `prepare` set it up (queue serial
    /// input, write memory), and runs it until it stops.
    init(_ image: FirmwareImage, prepare: (TestVM) throws -> Void = { _ in }) throws {
        vm = try TestVM(image)
        try prepare(vm)
        reason = try vm.runToCompletion()
    }
}

/// End-to-end runs of every guest in `firmware/` on KVM, each against the
/// contract in `firmware/README.md`: exact serial output, exact stop reason,
/// and registers or memory where the guest leaves a result there.
///
/// Serialized so that CI runs one vCPU at a time: on a 2-core runner with an
/// emulating KVM back end, parallel guests only make timings noisy.
@Suite(.serialized) struct FirmwareGuestTests {
    // MARK: Hello in every mode

    @Test func realModeHelloPrintsAndExitsZero() throws {
        let run = try GuestRun(.realHello)
        #expect(run.output.text == "Hello from real mode!\n")
        #expect(run.reason == .debugExit(status: 0))
    }

    @Test func protectedModeHelloPrintsAndExitsZero() throws {
        let run = try GuestRun(.protectedHello)
        #expect(run.output.text == "Hello from protected mode!\n")
        #expect(run.reason == .debugExit(status: 0))
    }

    @Test func longModeHelloPrintsAndExitsZero() throws {
        let run = try GuestRun(.longHello)
        #expect(run.output.text == "Hello from long mode!\n")
        #expect(run.reason == .debugExit(status: 0))
    }

    @Test func elfGuestIsLoadedByItsHeadersAndFindsItsBSSZeroed() throws {
        #expect(FirmwareImage.elfHello.format == .elf)
        #expect(Array(FirmwareImage.elfHello.bytes.prefix(4)) == [0x7f, 0x45, 0x4c, 0x46])
        let run = try GuestRun(.elfHello)
        #expect(run.output.text == "Hello from an ELF guest!\nbss ok\n")
        #expect(run.reason == .debugExit(status: 0))
    }

    // MARK: The demo

    static let demoStages = ["real mode", "protected mode", "long mode", "user mode", "trap", "user mode: back from trap"]

    @Test func demoTourReachesEveryStageInOrderAndExitsZero() throws {
        let run = try GuestRun(.demo)
        #expect(run.reason == .debugExit(status: 0))
        let lines = run.output.text.split(separator: "\n", omittingEmptySubsequences: false)
        // One line per stage, each naming its stage, in this order, and nothing else.
        #expect(lines.count == Self.demoStages.count + 1)
        for (line, stage) in zip(lines, Self.demoStages) {
            #expect(line.hasPrefix("swiftvmm demo: "), "\(line)")
            #expect(line.contains(stage), "line \(line.debugDescription) should name stage \(stage.debugDescription)")
        }
        #expect(
            run.output.text == """
                swiftvmm demo: real mode, 16-bit, loaded at 0x7c00
                swiftvmm demo: protected mode, 32-bit, own GDT
                swiftvmm demo: long mode, 64-bit, own page tables at 0x10000
                swiftvmm demo: user mode, ring 3
                swiftvmm demo: trap: #GP from user mode, emulated mov %cr3, %rax
                swiftvmm demo: user mode: back from trap, rax = 0x00010000 (cr3)

                """)
    }

    @Test func demoLeavesItsOwnTablesLoaded() throws {
        let run = try GuestRun(.demo)
        #expect(run.reason == .debugExit(status: 0))
        let special = try run.machine.specialRegisters()
        // Its own page tables, not the VMM's at 0x1000 (real-mode entry builds none).
        #expect(special.cr3 == 0x10000)
        // Present, writable, user (and PS for the 2 MiB pages), ignoring the
        // accessed and dirty bits the CPU sets as it walks them.
        let accessedDirty: UInt64 = 0x60
        #expect(try run.machine.memory.readInteger(at: GuestAddress(0x10000), as: UInt64.self) & ~accessedDirty == 0x11007)
        #expect(try run.machine.memory.readInteger(at: GuestAddress(0x11000), as: UInt64.self) & ~accessedDirty == 0x12007)
        #expect(try run.machine.memory.readInteger(at: GuestAddress(0x12000), as: UInt64.self) & ~accessedDirty == 0x00_0087)
        #expect(try run.machine.memory.readInteger(at: GuestAddress(0x12008), as: UInt64.self) & ~accessedDirty == 0x20_0087)
        #expect(try run.machine.memory.readInteger(at: GuestAddress(0x12010), as: UInt64.self) == 0)
        // EFER.LME set by its WRMSR, EFER.LMA by the CPU once paging was on.
        #expect(special.efer & 0x500 == 0x500)
        #expect(special.cr0 & 0x8000_0001 == 0x8000_0001)
        // Its GDT (six descriptors and a 16-byte TSS descriptor) and its TSS.
        #expect(special.gdt.limit == 0x3f)
        #expect(special.gdt.base > 0x7c00)
        #expect(special.tr.selector == 0x30)
        #expect(special.tr.limit == 0x67)
        #expect(special.idt.limit == 14 * 16 - 1)
    }

    // MARK: Memory, registers and halting

    @Test func memoryGuestComputesFromHostInputAndLeavesRegisters() throws {
        let value: UInt64 = 0x0123_4567_89ab_cdef
        let run = try GuestRun(.longMemory) { vm in
            try vm.writeInteger(value, at: 0x20_0000)
        }
        #expect(run.output.text == "")
        #expect(run.reason == .halted(interruptsEnabled: false))
        #expect(try run.machine.memory.readInteger(at: GuestAddress(0x20_0008), as: UInt64.self) == value &* 2 &+ 1)
        #expect(try run.machine.memory.read(count: 4096, at: GuestAddress(0x20_1000)) == [UInt8](repeating: 0xa5, count: 4096))
        // The fill stops exactly at its bounds.
        #expect(try run.machine.memory.read(count: 1, at: GuestAddress(0x20_0fff)) == [0])
        #expect(try run.machine.memory.read(count: 1, at: GuestAddress(0x20_2000)) == [0])
        let registers = try run.machine.registers()
        #expect(registers.rax == 42)
        #expect(registers.rbx == value)
        #expect(!registers.interruptsEnabled)
    }

    @Test func haltWithInterruptsOffIsACleanStop() throws {
        let run = try GuestRun(.realHalt)
        #expect(run.output.text == "halting\n")
        #expect(run.reason == .halted(interruptsEnabled: false))
        #expect(run.reason.exitStatus == 0)
        #expect(!run.reason.isFailure)
    }

    @Test func haltWithInterruptsOnIsReportedAsStuck() throws {
        let run = try GuestRun(.realHaltSti)
        #expect(run.output.text == "halting with interrupts enabled\n")
        #expect(run.reason == .halted(interruptsEnabled: true))
        #expect(run.reason.exitStatus == 1)
        #expect(run.reason.isFailure)
    }

    // MARK: Serial input

    @Test func serialInputIsEchoedUppercasedUpToTheNewline() throws {
        let run = try GuestRun(.realSerialIn) { vm in
            #expect(vm.typeSerial("hello\n") == 6)
        }
        #expect(run.output.text == "HELLO\n")
        #expect(run.reason == .debugExit(status: 0))
        #expect(!run.machine.serial.hasPendingInput)
    }

    @Test func serialInputStopsAtTheFirstNewlineAndLeavesTheRest() throws {
        let run = try GuestRun(.realSerialIn) { vm in
            #expect(vm.typeSerial("Ab-z{\nmore") == 10)
        }
        // Only a-z change: '-', '{' and the capital stay as they are.
        #expect(run.output.text == "AB-Z{\n")
        #expect(run.reason == .debugExit(status: 0))
        #expect(run.machine.serial.hasPendingInput)
    }

    @Test func serialInGuestWithNoInputSaysSoAndExitsThree() throws {
        let run = try GuestRun(.realSerialIn)
        #expect(run.output.text == "no input\n")
        #expect(run.reason == .debugExit(status: 3))
    }

    @Test func serialInputThatRunsOutBeforeANewlineExitsThree() throws {
        let run = try GuestRun(.realSerialIn) { vm in
            vm.typeSerial("hi")
        }
        #expect(run.output.text == "HIno input\n")
        #expect(run.reason == .debugExit(status: 3))
    }

    // MARK: String I/O and MMIO

    @Test func repOutsbPrintsBothStringsAndConsumesThem() throws {
        let run = try GuestRun(.realRepOutsb)
        #expect(run.output.text == "rep outsb: one exit, many bytes\nrep outsb: second string\n")
        #expect(run.reason == .debugExit(status: 0))
        // The strings are the image's last bytes: SI ends one past them, CX at 0.
        let registers = try run.machine.registers()
        #expect(registers.rcx & 0xffff == 0)
        #expect(registers.rsi & 0xffff == 0x7c00 + UInt64(FirmwareImage.realRepOutsb.bytes.count))
    }

    @Test func unclaimedMMIOReadsAllOnesAndIsCounted() throws {
        let run = try GuestRun(.longMmio)
        #expect(run.output.text == "mmio: 0xd0000000 reads ffffffff, 0xe0000000 reads ffffffff\n")
        #expect(run.reason == .debugExit(status: 0x11))
        #expect(run.machine.mmio.unclaimedReads == 2)
        #expect(run.machine.mmio.unclaimedWrites == 1)
        let registers = try run.machine.registers()
        #expect(registers.rbx == 0xffff_ffff)
        #expect(registers.rbp == 0xffff_ffff)
    }

    // MARK: Benchmark guests

    @Test func touchPagesDirtiesTheChosenPagesBetweenTwoPostCodes() throws {
        let run = try GuestRun(.longTouchPages) { vm in
            try vm.modifyRegisters {
                $0.rdi = 0x20_0000
                $0.rcx = 3
            }
        }
        #expect(run.output.text == "")
        #expect(run.reason == .debugExit(status: 0))
        #expect(run.machine.postCodes.writeCount == 2)
        for page: UInt64 in 0..<3 {
            let address = 0x20_0000 + page * 4096
            #expect(try run.machine.memory.readInteger(at: GuestAddress(address), as: UInt64.self) == address)
        }
        #expect(try run.machine.memory.readInteger(at: GuestAddress(0x20_3000), as: UInt64.self) == 0, "exactly RCX pages")
    }

    @Test func resumeProbeExitsAtOnceWhereNothingAnswersAtPortE0() throws {
        let output = SerialBufferOutput()
        let machine = try Machine(
            MachineConfiguration(
                guest: .firmware(.multibootResumeProbe), memorySize: 16 << 20, serialOutput: output, platform: .pc))
        #expect(try machine.run(timeout: .seconds(30)) == .debugExit(status: 0x10))
        #expect(output.text == "resume-probe: waiting\n")
        let last: UInt64 = 0x20_0000 + 2559 * 4096
        #expect(try machine.memory.readInteger(at: GuestAddress(last), as: UInt32.self) == UInt32(last))
        #expect(try machine.memory.readInteger(at: GuestAddress(last + 4096), as: UInt32.self) == 0)
    }

    // MARK: Failure

    @Test func tripleFaultStopsTheMachineAsAFailure() throws {
        let run = try GuestRun(.longTripleFault)
        #expect(run.output.text == "triple fault next\n")
        // Hardware KVM reports a shutdown; back ends that emulate ring 0 (PVM)
        // may report an emulation failure instead. Either is a triple fault.
        switch run.reason {
        case .shutdown, .internalError(suberror: 1, data: _): break
        default: Issue.record("expected a shutdown or KVM internal error 1, got \(run.reason)")
        }
        #expect(run.reason.isFailure)
        #expect(run.reason.exitStatus != 0)
    }
}
