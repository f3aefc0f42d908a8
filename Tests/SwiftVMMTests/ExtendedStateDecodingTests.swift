import Testing
import VMCore

@testable import SwiftVMM

/// Decoding the XSAVE family and its memory operand, and the page walk that
/// decides a #PF, on plain values (no KVM).
@Suite struct ExtendedStateDecodingTests {
    func decode(_ bytes: [UInt8]) -> ExtendedStateInstruction? { ExtendedStateInstruction.decode(bytes + [0x90, 0x90]) }

    @Test func formsAndOperandsAreDecoded() throws {
        // xsave64 (%rdi): 48 0f ae 27 (Linux's os_xsave)
        let xsave = try #require(decode([0x48, 0x0f, 0xae, 0x27]))
        #expect(xsave.form == .save && xsave.wide && xsave.length == 4)
        #expect(xsave.operand == MemoryOperand(base: 7))
        // xrstor64 (%rdi), xsaveopt64 (%rdi), xsavec64 (%rdi), xsaves/xrstors
        #expect(decode([0x48, 0x0f, 0xae, 0x2f])?.form == .restore)
        #expect(decode([0x48, 0x0f, 0xae, 0x37])?.form == .saveOptimized)
        #expect(decode([0x48, 0x0f, 0xc7, 0x27])?.form == .saveCompacted)
        #expect(decode([0x48, 0x0f, 0xc7, 0x2f])?.form == .supervisor)
        #expect(decode([0x48, 0x0f, 0xc7, 0x1f])?.form == .supervisor)
        // xsave 0x1000(%rbx,%rcx,8): no REX, SIB, disp32
        let sib = try #require(decode([0x0f, 0xae, 0xa4, 0xcb, 0x00, 0x10, 0x00, 0x00]))
        #expect(!sib.wide && sib.length == 8)
        #expect(sib.operand == MemoryOperand(base: 3, index: 1, scale: 8, displacement: 0x1000))
        // xsave -0x40(%r13) with REX.B and disp8; xrstor with a gs override and RIP-relative disp32
        #expect(decode([0x41, 0x0f, 0xae, 0x65, 0xc0])?.operand == MemoryOperand(base: 13, displacement: -0x40))
        let rip = try #require(decode([0x65, 0x0f, 0xae, 0x2d, 0x10, 0, 0, 0]))
        #expect(rip.operand == MemoryOperand(displacement: 0x10, ripRelative: true, segmentOverride: 5) && rip.length == 8)
        // Not the family: register operands (lfence, rdrand), fxsave (/0), clwb (66), cmpxchg16b (/1), a lock prefix.
        #expect(decode([0x0f, 0xae, 0xe8]) == nil)
        #expect(decode([0x0f, 0xc7, 0xf0]) == nil)
        #expect(decode([0x0f, 0xae, 0x07]) == nil)
        #expect(decode([0x66, 0x0f, 0xae, 0x37]) == nil)
        #expect(decode([0x48, 0x0f, 0xc7, 0x0f]) == nil)
        #expect(decode([0xf0, 0x0f, 0xae, 0x27]) == nil)
        // The assist picks it up from an emulation failure's report (flags, then length and bytes).
        #expect(InstructionAssist(emulationFailure: [0x1, 0x0000_0027_ae0f_4804]) == .extendedState(xsave))
    }

    @Test func ldmxcsrAndStmxcsrAreDecoded() throws {
        // ldmxcsr 0x4(%rsp) (0f ae 54 24 04), as this PVM host reported it for Linux's kernel_fpu_begin_mask.
        let load = try #require(decode([0x0f, 0xae, 0x54, 0x24, 0x04]))
        #expect(load.form == .loadMXCSR && load.length == 5 && load.operand == MemoryOperand(base: 4, displacement: 4))
        #expect(InstructionAssist(emulationFailure: [0x1, 0x8041_0424_54ae_0f0f, 0xc358_e3db_0274_01e0]) == .extendedState(load))
        // stmxcsr (%rdi); stmxcsr -8(%r12) with REX.B
        #expect(decode([0x0f, 0xae, 0x1f])?.form == .storeMXCSR)
        #expect(decode([0x41, 0x0f, 0xae, 0x5c, 0x24, 0xf8])?.operand == MemoryOperand(base: 12, displacement: -8))
        // Register forms (0f ae d0: wrfsbase needs f3) and vldmxcsr (VEX) are not these.
        #expect(decode([0x0f, 0xae, 0xd0]) == nil)
        #expect(decode([0xf3, 0x0f, 0xae, 0x14, 0x24]) == nil)
        #expect(decode([0xc5, 0xf8, 0xae, 0x14, 0x24]) == nil)
    }

    @Test func linearAddressesFollowTheMode() {
        var registers = Registers()
        registers.rbx = 0x1000
        registers.rcx = 2
        var long = SpecialRegisters()
        long.cs.l = true
        long.efer = 0x500
        long.fs.base = 0x7000_0000_0000
        long.ds.base = 0x1234  // ignored in 64-bit mode
        let operand = MemoryOperand(base: 3, index: 1, scale: 8, displacement: -0x10)
        #expect(operand.linearAddress(registers: registers, special: long, nextRIP: 0) == 0x1000)
        var fs = operand
        fs.segmentOverride = 4
        #expect(fs.linearAddress(registers: registers, special: long, nextRIP: 0) == 0x7000_0000_1000)
        #expect(
            MemoryOperand(displacement: 0x40, ripRelative: true).linearAddress(registers: registers, special: long, nextRIP: 0x10_0000)
                == 0x10_0040)
        var short = operand
        short.addressSizeOverride = true
        registers.rbx = 0x1_0000_0008
        #expect(short.linearAddress(registers: registers, special: long, nextRIP: 0) == 0x8, "67: 32-bit addresses")

        var protected = SpecialRegisters()
        protected.cs.db = true
        protected.ds.base = 0x10_0000
        protected.ss.base = 0x20_0000
        registers.rbx = 0x1000
        registers.rsp = 0x3000
        #expect(operand.linearAddress(registers: registers, special: protected, nextRIP: 0) == 0x10_1000, "DS base added")
        #expect(MemoryOperand(base: 4).linearAddress(registers: registers, special: protected, nextRIP: 0) == 0x20_3000, "SS for ESP")
        #expect(
            MemoryOperand(displacement: 0x40, ripRelative: true).linearAddress(registers: registers, special: protected, nextRIP: 5)
                == 0x10_0040)
        var sixteen = operand
        sixteen.addressSizeOverride = true
        #expect(sixteen.linearAddress(registers: registers, special: protected, nextRIP: 0) == nil, "16-bit addressing")
    }

    /// Four-level tables in a dictionary of 8-byte entries: PML4 at 0x1000,
    /// PDPT at 0x2000, PD at 0x3000 (a 2 MiB page at 0x400000 for linear 0,
    /// read-only), PT at 0x4000 for linear 0x200000 (page 0x5000, writable,
    /// user; page 0x201000 not present).
    @Test func pageWalkTranslatesAndRefusesAsTheCPUDoes() throws {
        var entries: [UInt64: UInt64] = [
            0x1000: 0x2000 | 7, 0x2000: 0x3000 | 7, 0x3000: 0x40_0000 | 0x80 | 1 | 4, 0x3008: 0x4000 | 7, 0x4000: 0x5000 | 7,
        ]
        var special = SpecialRegisters()
        special.cr0 = 0x8001_0033  // PG, WP
        special.cr3 = 0x1000
        special.cr4 = 0x20
        special.efer = 0x500
        special.cs.l = true
        func walk(_ address: UInt64, write: Bool, rflags: UInt64 = 2) throws(PageWalk.Fault) -> UInt64 {
            try PageWalk(special: special, rflags: rflags).translate(
                address, write: write, readEntry: { address, _ in entries[address] }, writeEntry: { entries[$0] = $2 })
        }
        #expect(try walk(0x12345, write: false) == 0x41_2345)
        #expect(entries[0x3000]! & 0x60 == 0x20, "accessed, not dirty")
        #expect(throws: PageWalk.Fault(errorCode: 3)) { try walk(0x12345, write: true) }
        #expect(try walk(0x20_0010, write: true) == 0x5010)
        #expect(entries[0x4000]! & 0x60 == 0x60, "accessed and dirty")
        #expect(throws: PageWalk.Fault(errorCode: 2)) { try walk(0x20_1000, write: true) }
        #expect(throws: PageWalk.Fault(errorCode: 0)) { try walk(0x1_0000_0000, write: false) }
        // SMAP: a supervisor access to a user page faults unless RFLAGS.AC is set.
        special.cr4 |= 1 << 21
        #expect(throws: PageWalk.Fault(errorCode: 1)) { try walk(0x20_0010, write: false) }
        #expect(try walk(0x20_0010, write: false, rflags: 1 << 18) == 0x5010)
        // Without CR0.WP a supervisor write to a read-only page goes through.
        special.cr4 &= ~(1 << 21)
        special.cr0 &= ~(1 << 16)
        #expect(try walk(0x12345, write: true) == 0x41_2345)
        // Paging off: the linear address.
        special.cr0 = 0x11
        #expect(try walk(0x12345, write: true) == 0x12345)
    }

    /// The AVX moves of kvm-unit-tests' `xsave`, as the compiler encodes them.
    @Test func vectorMovesAreDecoded() throws {
        #expect(VectorMove.decode([0xc5, 0xfc, 0x77]) == VectorMove(kind: .zeroAll, width: 32, aligned: false, length: 3))
        #expect(VectorMove.decode([0xc5, 0xf8, 0x77])?.kind == .zeroUpper)
        // vmovdqa 0x10(%rip), %ymm8 (c5 7d 6f 05 disp32): VEX.R selects ymm8.
        let load = try #require(VectorMove.decode([0xc5, 0x7d, 0x6f, 0x05, 0x10, 0, 0, 0]))
        #expect(load.kind == .load(register: 8) && load.width == 32 && load.aligned && load.length == 8)
        #expect(load.operand == MemoryOperand(displacement: 0x10, ripRelative: true))
        // vmovdqa %ymm0, %ymm15 (c5 7d 7f c7: store form, ModRM.rm with VEX.B clear in the 2-byte form)
        let registers = try #require(VectorMove.decode([0xc4, 0xc1, 0x7d, 0x7f, 0xc7]))
        #expect(registers.kind == .store(register: 0) && registers.source == 15 && registers.operand == nil)
        // vmovntdqa (%rax), %ymm1 (c4 e2 7d 2a 08); vmovntdq %ymm2, (%rbx) (c5 fd e7 13); vmovdqu (f3) is unaligned.
        #expect(VectorMove.decode([0xc4, 0xe2, 0x7d, 0x2a, 0x08])?.kind == .load(register: 1))
        #expect(VectorMove.decode([0xc5, 0xfd, 0xe7, 0x13])?.kind == .store(register: 2))
        #expect(VectorMove.decode([0xc5, 0xfe, 0x6f, 0x00])?.aligned == false)
        // Not these: vmovntdq to a register, a VEX.vvvv other than 1111, vpaddd (computes).
        #expect(VectorMove.decode([0xc5, 0xfd, 0xe7, 0xc0]) == nil)
        #expect(VectorMove.decode([0xc5, 0xf5, 0x6f, 0x00]) == nil)
        #expect(VectorMove.decode([0xc5, 0xfd, 0xfe, 0xc1]) == nil)
    }

    /// A move writes the XMM part at 160 and the upper half at the AVX
    /// component's offset, clears the rest, and marks SSE and AVX in use.
    @Test func vectorRegistersLiveInTheXSAVEBuffer() {
        var state = [UInt8](repeating: 0xff, count: 4096)
        state[512] = 0
        let bytes = (0..<32).map { UInt8($0) }
        VectorMove.write(3, bytes, into: &state, upperOffset: 576, zmmUpperOffset: 1408)
        #expect(state[208..<224] == bytes[0..<16])
        #expect(state[624..<640] == bytes[16..<32])
        #expect(state[1504..<1536].allSatisfy { $0 == 0 })
        #expect(state[512] == 6)
        #expect(VectorMove.read(3, width: 32, from: state, upperOffset: 576) == bytes)
        VectorMove.write(3, Array(bytes[0..<16]), into: &state, upperOffset: 576, zmmUpperOffset: nil)
        #expect(state[624..<640].allSatisfy { $0 == 0 }, "a 128-bit VEX write clears the upper half")
    }
}
