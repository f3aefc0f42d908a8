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
}
