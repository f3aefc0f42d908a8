import Testing

@testable import SwiftVMM

@Suite struct Int3DeliveryTests {
    /// `struct kvm_run.emulation_failure` as KVM reported it for Linux's
    /// int3_selftest on the PVM back end: flags 1, 15 instruction bytes starting `cc`.
    @Test func anEmulationFailureOnInt3IsRecognised() {
        #expect(Machine.failedInstructionIsInt3([0x1, 0x7c83_9090_9090_cc0f, 0x480b_0f02_7401_0424]))
        // lock cmpxchg16b: f0 48 0f c7 ...
        #expect(!Machine.failedInstructionIsInt3([0x1, 0x7420_4dc7_0f48_f00f]))
        // No instruction bytes in the report.
        #expect(!Machine.failedInstructionIsInt3([0x0, 0x7c83_9090_9090_cc0f]))
        #expect(!Machine.failedInstructionIsInt3([]))
    }
}
