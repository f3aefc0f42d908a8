import Firmware
import SwiftVMM
import Testing
import VMMTesting

/// The instructions the PVM host cannot emulate in guest ring 0 and
/// `InstructionAssist` carries out from user space, each checked by a guest
/// that looks at the architectural result itself (registers, flags, XCR0, the
/// #GP an invalid XSETBV raises). Where the host runs ring 0 natively
/// (hardware virtualization) the guests pass without the assist. The assist
/// is for the PC platform (Linux's), so the guests run there.
@Suite struct InstructionAssistGuestTests {
    /// Runs `guest` and returns its exit status and how many instructions the VMM carried out.
    func run(_ guest: FirmwareImage) throws -> (StopReason, assisted: Int) {
        let vm = try TestVM(guest, platform: .pc)
        let reason = try vm.runToCompletion(timeout: .seconds(30))
        return (reason, vm.machine.assistedInstructions)
    }

    @Test func clacAndStacChangeOnlyTheAlignmentCheckFlag() throws {
        let vm = try TestVM(TestGuest.longAssistClacStac, platform: .pc)
        let reason = try vm.runToCompletion(timeout: .seconds(30))
        let assisted = vm.machine.assistedInstructions
        let pushed = try vm.registers().r15
        #expect(reason == .debugExit(status: 0), "RFLAGS pushed: \(String(pushed, radix: 16))")
        if !HostCapabilities.hasHardwareVirtualization { #expect(assisted == 3) }
    }

    @Test func popcntCountsBitsInEveryOperandSize() throws {
        let (reason, assisted) = try run(TestGuest.longAssistPopcnt)
        #expect(reason == .debugExit(status: 0))
        if !HostCapabilities.hasHardwareVirtualization { #expect(assisted == 6) }
    }

    @Test func xgetbvAndXsetbvReachXCR0AndAnInvalidValueRaisesGP() throws {
        let vm = try TestVM(TestGuest.longAssistXcr, platform: .pc)
        #expect(try vm.runToCompletion(timeout: .seconds(30)) == .debugExit(status: 0x0d))
        // The host refuses the four xgetbv; its KVM emulates xsetbv itself
        // (the assist covers the back ends that do not).
        if !HostCapabilities.hasHardwareVirtualization { #expect(vm.machine.assistedInstructions >= 4) }
    }

    /// xsave, xsaveopt, xsavec and xrstor (standard and compacted) with the
    /// exceptions they raise (#GP for alignment and bad headers, #PF with CR2
    /// for an unmapped operand): the guest checks memory images and what
    /// `fxsave` (which KVM emulates) sees; the test then compares the state
    /// the guest left in the vCPU (image A: x87 control word, MXCSR, XMM and
    /// the upper YMM halves) with that image in guest memory.
    @Test func xsaveAndXrstorMoveStateBetweenTheVCPUAndMemory() throws {
        let vm = try TestVM(TestGuest.longAssistXsave, platform: .pc)
        let reason = try vm.runToCompletion(timeout: .seconds(30))
        let seen = try vm.read(count: 24, at: 0x20f000)
        let xsaveoptHeader = try vm.read(count: 8, at: 0x202000 + 512)
        let xsavecHeader = try vm.read(count: 16, at: 0x203000 + 512)
        let fxsaveImage = try vm.read(count: 32, at: 0x204000)
        #expect(
            reason == .debugExit(status: 0),
            "last exception (vector, error code, CR2): \(seen); XSTATE_BV at 0x202200: \(xsaveoptHeader); fxsave image: \(fxsaveImage); xsavec header: \(xsavecHeader)"
        )
        guard reason == .debugExit(status: 0) else { return }
        let image = try vm.read(count: 1024, at: 0x200000)
        guard case .xsave(let state) = try vm.machine.captureState().vcpus[0].floatingPoint else {
            Issue.record("no XSAVE state on this host")
            return
        }
        #expect(state[0..<2] == image[0..<2], "FCW")
        #expect(state[24..<28] == image[24..<28], "MXCSR")
        #expect(state[160..<416] == image[160..<416], "XMM0-15")
        #expect(state[576..<832] == image[576..<832], "YMM0-15 upper halves")
        #expect(state[512] & 7 == 7, "XSTATE_BV")
        // Every xsave, xsaveopt, xsavec and xrstor the guest runs: 17.
        if !HostCapabilities.hasHardwareVirtualization { #expect(vm.machine.assistedInstructions == 17) }
    }
}
