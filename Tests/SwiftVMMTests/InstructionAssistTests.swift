import Testing

@testable import SwiftVMM

@Suite struct InstructionAssistTests {
    /// `struct kvm_run.emulation_failure` as KVM reported it for Linux's
    /// int3_selftest on the PVM back end: flags 1, 15 instruction bytes starting `cc`.
    @Test func emulationFailuresAreDecodedIntoAssists() {
        #expect(InstructionAssist(emulationFailure: [0x1, 0x7c83_9090_9090_cc0f, 0x480b_0f02_7401_0424]) == .breakpoint)
        // fwait; mov ... (from Linux's FPU setup on PVM)
        #expect(InstructionAssist(emulationFailure: [0x1, 0xe7cd_05c7_4865_9b0f, 0x9066_0000_0000_7efd]) == .fwait)
        #expect(InstructionAssist(emulationFailure: [0x1, 0x0000_0000_00e3_db0f]) == .fpuInit(length: 2))
        #expect(InstructionAssist(emulationFailure: [0x1, 0x0000_0000_e3db_9b0f]) == .fpuInit(length: 3))
        // lock cmpxchg16b (f0 48 0f c7 ...) and popcnt are not assisted.
        #expect(InstructionAssist(emulationFailure: [0x1, 0x7420_4dc7_0f48_f00f]) == nil)
        #expect(InstructionAssist(emulationFailure: [0x1, 0x0141_c7b8_0f48_f30f]) == nil)
        // No instruction bytes in the report.
        #expect(InstructionAssist(emulationFailure: [0x0, 0x7c83_9090_9090_cc0f]) == nil)
        #expect(InstructionAssist(emulationFailure: []) == nil)
        #expect(InstructionAssist.instructionBytes([0x1, 0x0000_0000_00e3_db02]) == [0xdb, 0xe3])
    }
}
