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
        // lock cmpxchg16b (f0 48 0f c7 ...) is not assisted.
        #expect(InstructionAssist(emulationFailure: [0x1, 0x7420_4dc7_0f48_f00f]) == nil)
        // popcnt %rdi, %rax (f3 48 0f b8 c7), Linux's hweight64 on PVM.
        #expect(
            InstructionAssist(emulationFailure: [0x1, 0x0141_c7b8_0f48_f30f])
                == .populationCount(destination: 0, source: 7, operandSize: 8, length: 5))
        // No instruction bytes in the report.
        #expect(InstructionAssist(emulationFailure: [0x0, 0x7c83_9090_9090_cc0f]) == nil)
        #expect(InstructionAssist(emulationFailure: []) == nil)
        #expect(InstructionAssist.instructionBytes([0x1, 0x0000_0000_00e3_db02]) == [0xdb, 0xe3])
    }

    /// The instructions added for the test kernel, decoded from their bytes
    /// (the report's first word is flags, then length and bytes little-endian).
    @Test func newAssistsAreDecoded() {
        func decode(_ bytes: [UInt8], invpcid: Bool = true) -> InstructionAssist? {
            var words: [UInt64] = [1]
            let packed = [UInt8(bytes.count)] + bytes + [UInt8](repeating: 0x90, count: 15 - bytes.count)
            for chunk in stride(from: 0, to: packed.count, by: 8) {
                words.append(
                    packed[chunk..<min(chunk + 8, packed.count)].enumerated().reduce(0) {
                        $0 | UInt64($1.element) << (8 * UInt64($1.offset))
                    })
            }
            return InstructionAssist(emulationFailure: words, guestHasINVPCID: invpcid)
        }
        #expect(decode([0x0f, 0x01, 0xca]) == .alignmentCheck(set: false))
        #expect(decode([0x0f, 0x01, 0xcb]) == .alignmentCheck(set: true))
        #expect(decode([0x0f, 0x01, 0xd0]) == .readExtendedControlRegister)
        #expect(decode([0x0f, 0x01, 0xd1]) == .writeExtendedControlRegister)
        // rdpru: #UD, as KVM gives it (kvm-unit-tests' `rdpru`).
        #expect(decode([0x0f, 0x01, 0xfd]) == .undefinedReadProcessorRegister)
        // movbe %eax, %eax (kvm-unit-tests' emulator): #UD; movbe (%rax), %eax is not assisted.
        #expect(decode([0x0f, 0x38, 0xf0, 0xc0]) == .undefinedRegisterMoveBigEndian)
        #expect(decode([0x0f, 0x38, 0xf0, 0x00]) == nil)
        // clwb (%rbx) (kvm-unit-tests' memory); clwb 0x10(%rsp) with SIB and disp8;
        // clwb with REX.B and disp32; clwb 0x0(%rip); clflushopt (/7) and pcommit (mod 3) are not assisted.
        #expect(decode([0x66, 0x0f, 0xae, 0x33]) == .cacheLineWriteBack(length: 4))
        #expect(decode([0x66, 0x0f, 0xae, 0x74, 0x24, 0x10]) == .cacheLineWriteBack(length: 6))
        #expect(decode([0x66, 0x41, 0x0f, 0xae, 0xb0, 0, 1, 0, 0]) == .cacheLineWriteBack(length: 9))
        #expect(decode([0x66, 0x0f, 0xae, 0x35, 0, 0, 0, 0]) == .cacheLineWriteBack(length: 8))
        #expect(decode([0x66, 0x0f, 0xae, 0x3b]) == nil)
        #expect(decode([0x66, 0x0f, 0xae, 0xf8]) == nil)
        // invpcid (%rax), %rbx: #UD only when the guest's CPUID lacks INVPCID (kvm-unit-tests' pcid-*).
        #expect(decode([0x66, 0x0f, 0x38, 0x82, 0x18]) == nil)
        #expect(decode([0x66, 0x0f, 0x38, 0x82, 0x18], invpcid: false) == .undefinedInvalidatePCID)
        #expect(decode([0x66, 0x0f, 0x38, 0x82, 0xd8], invpcid: false) == nil)
        // popcnt %edi, %eax; popcnt %r9, %r10 (REX.W|R|B); popcnt %cx, %bx (66).
        #expect(decode([0xf3, 0x0f, 0xb8, 0xc7]) == .populationCount(destination: 0, source: 7, operandSize: 4, length: 4))
        #expect(decode([0xf3, 0x4d, 0x0f, 0xb8, 0xd1]) == .populationCount(destination: 10, source: 9, operandSize: 8, length: 5))
        #expect(decode([0x66, 0xf3, 0x0f, 0xb8, 0xd9]) == .populationCount(destination: 3, source: 1, operandSize: 2, length: 5))
        // popcnt with a memory source, or without F3 (that is jmpe/ud), is not assisted.
        #expect(decode([0xf3, 0x48, 0x0f, 0xb8, 0x07]) == nil)
        #expect(decode([0x48, 0x0f, 0xb8, 0xc7]) == nil)
    }
}
