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

    /// `lsl %rax, %rax` (48 0f 03 c0) as KVM reported it for Linux's NMI
    /// entry (`paranoid_entry` reading its CPU number) on the PVM back end.
    @Test func lslIsDecodedAndItsDescriptorChecksFollowTheSDM() {
        #expect(
            InstructionAssist(emulationFailure: [0x1, 0xff25_48c0_030f_480f, 0xe0c5_048b_4800_000f])
                == .loadSegmentLimit(destination: 0, source: 0, operandSize: 8, length: 4))
        // lsl %cx, %bx with 66; a memory source is not assisted.
        #expect(
            InstructionAssist.loadSegmentLimit([0x66, 0x0f, 0x03, 0xd9])
                == .loadSegmentLimit(destination: 3, source: 1, operandSize: 2, length: 4))
        #expect(InstructionAssist.loadSegmentLimit([0x0f, 0x03, 0x03]) == nil)
        // Linux's per-CPU segment: DPL 3 data, limit = CPU 5 (node 0), byte-granular.
        let perCPU: UInt64 = 0x0000_f300_0000_0005
        #expect(InstructionAssist.visibleLimit(perCPU, selector: 0x7b, cpl: 0, longMode: true) == 5)
        // A flat DPL-0 data segment, 4 KiB granular: 0xffffffff, but not through an RPL-3 selector.
        let kernelData: UInt64 = 0x00cf_9300_0000_ffff
        #expect(InstructionAssist.visibleLimit(kernelData, selector: 0x10, cpl: 0, longMode: true) == 0xffff_ffff)
        #expect(InstructionAssist.visibleLimit(kernelData, selector: 0x13, cpl: 0, longMode: true) == nil)
        #expect(InstructionAssist.visibleLimit(kernelData, selector: 0x10, cpl: 3, longMode: true) == nil)
        // Conforming code is visible from any level; a 64-bit TSS (type 9) too, a call gate (12) never.
        #expect(InstructionAssist.visibleLimit(0x00cf_9f00_0000_ffff, selector: 0x13, cpl: 3, longMode: true) == 0xffff_ffff)
        #expect(InstructionAssist.visibleLimit(0x0000_8900_0000_0067, selector: 0x40, cpl: 0, longMode: true) == 0x67)
        #expect(InstructionAssist.visibleLimit(0x0000_8c00_0000_0067, selector: 0x40, cpl: 0, longMode: true) == nil)
        // The 16-bit TSS (type 1) only outside long mode.
        #expect(InstructionAssist.visibleLimit(0x0000_8100_0000_002b, selector: 0x40, cpl: 0, longMode: false) == 0x2b)
        #expect(InstructionAssist.visibleLimit(0x0000_8100_0000_002b, selector: 0x40, cpl: 0, longMode: true) == nil)
    }

    /// A long-mode guest on the PC platform runs `lsl` on its own GDT: the
    /// flat data segment's limit with ZF set, then a selector past the GDT's
    /// limit with ZF clear and the destination kept, then the null selector.
    /// Carried out by the VMM where the host cannot (this PVM host), natively elsewhere.
    @Test func lslInAGuestReportsItsGDTLimits() throws {
        let code: [UInt8] = [
            0x48, 0xc7, 0xc1, 0x10, 0x00, 0x00, 0x00,  // mov $0x10, %rcx (flat data)
            0x48, 0xc7, 0xc3, 0x34, 0x12, 0x00, 0x00,  // mov $0x1234, %rbx
            0x0f, 0x03, 0xd9,  // lsl %ecx, %ebx
            0x9c, 0x5a,  // pushf; pop %rdx
            0x48, 0xc7, 0xc6, 0x48, 0x00, 0x00, 0x00,  // mov $0x48, %rsi (past the GDT)
            0x48, 0xc7, 0xc7, 0x78, 0x56, 0x00, 0x00,  // mov $0x5678, %rdi
            0x48, 0x0f, 0x03, 0xfe,  // lsl %rsi, %rdi
            0x9c, 0x41, 0x58,  // pushf; pop %r8
            0x4d, 0x31, 0xc9,  // xor %r9, %r9 (the null selector)
            0x49, 0xc7, 0xc2, 0x9a, 0x00, 0x00, 0x00,  // mov $0x9a, %r10
            0x4d, 0x0f, 0x03, 0xd1,  // lsl %r9, %r10
            0x9c, 0x41, 0x5b,  // pushf; pop %r11
            0xfa, 0xf4,  // cli; hlt
        ]
        let machine = try Machine(MachineConfiguration(guest: .flat(bytes: code, mode: .long), memorySize: 16 << 20, platform: .pc))
        #expect(try machine.run(timeout: .seconds(10)) == .halted(interruptsEnabled: false))
        let registers = try machine.registers()
        #expect(
            registers.rbx == 0xffff_ffff && registers.rdx & 0x40 != 0,
            "rbx \(String(registers.rbx, radix: 16)) flags \(String(registers.rdx, radix: 16))")
        #expect(
            registers.rdi == 0x5678 && registers.r8 & 0x40 == 0,
            "rdi \(String(registers.rdi, radix: 16)) flags \(String(registers.r8, radix: 16))")
        #expect(
            registers.r10 == 0x9a && registers.r11 & 0x40 == 0,
            "r10 \(String(registers.r10, radix: 16)) flags \(String(registers.r11, radix: 16))")
    }

    /// A long-mode guest loads MXCSR from its stack with `ldmxcsr` and stores
    /// it back with `stmxcsr`: round toward zero, flush to zero, every
    /// exception masked (0xff80). Carried out by the VMM where the host
    /// cannot (this PVM host), natively elsewhere.
    @Test func ldmxcsrAndStmxcsrInAGuestMoveMXCSR() throws {
        let code: [UInt8] = [
            0x0f, 0x20, 0xe0,  // mov %cr4, %rax
            0x48, 0x0d, 0x00, 0x06, 0x00, 0x00,  // or $0x600, %rax (OSFXSR, OSXMMEXCPT)
            0x0f, 0x22, 0xe0,  // mov %rax, %cr4
            0x48, 0x83, 0xec, 0x10,  // sub $16, %rsp
            0xc7, 0x04, 0x24, 0x80, 0xff, 0x00, 0x00,  // movl $0xff80, (%rsp)
            0xc7, 0x44, 0x24, 0x04, 0x00, 0x00, 0x00, 0x00,  // movl $0, 4(%rsp)
            0x0f, 0xae, 0x14, 0x24,  // ldmxcsr (%rsp)
            0x0f, 0xae, 0x5c, 0x24, 0x04,  // stmxcsr 4(%rsp)
            0x8b, 0x5c, 0x24, 0x04,  // mov 4(%rsp), %ebx
            0xfa, 0xf4,  // cli; hlt
        ]
        let machine = try Machine(MachineConfiguration(guest: .flat(bytes: code, mode: .long), memorySize: 16 << 20, platform: .pc))
        #expect(try machine.run(timeout: .seconds(10)) == .halted(interruptsEnabled: false))
        let stored = try machine.registers().rbx
        #expect(stored == 0xff80, "stmxcsr stored \(String(stored, radix: 16))")
    }
}
