import KVM
import VMCore

/// Instructions some KVM back ends cannot run for a guest kernel (KVM's PVM
/// back end emulates ring-0 code and stops with an emulation failure on a few),
/// which the VMM can carry out itself exactly as the CPU would.
///
/// Only for the PC platform, and only for instructions whose whole effect is
/// simple: anything else stays an internal error, reported as such.
enum InstructionAssist: Hashable, Sendable {
    /// `int3` (cc): a #BP trap, with RIP after the instruction.
    case breakpoint
    /// `fwait` (9b) on its own: checks for pending x87 exceptions; with none
    /// (the kernel masks them all) it does nothing.
    case fwait
    /// `fninit` (db e3), or `finit` (9b db e3): resets the x87 control,
    /// status and tag words.
    case fpuInit(length: UInt64)
    /// `clac` (0f 01 ca) or `stac` (0f 01 cb): clears or sets RFLAGS.AC and
    /// nothing else. (#UD outside ring 0, as the CPU does.)
    case alignmentCheck(set: Bool)
    /// `popcnt` with a register source (f3 [REX] 0f b8 /r, mod = 3): the
    /// destination gets the number of set bits in the source (`operandSize`
    /// bytes; a 32-bit result clears the upper half, a 16-bit one keeps the
    /// rest), ZF says whether the source was 0, and CF, OF, SF, AF, PF are cleared.
    case populationCount(destination: Int, source: Int, operandSize: Int, length: UInt64)
    /// `xgetbv` (0f 01 d0): EDX:EAX = XCR[ECX], through `KVM_GET_XCRS`.
    case readExtendedControlRegister
    /// `xsetbv` (0f 01 d1): XCR[ECX] = EDX:EAX, through `KVM_SET_XCRS`, which
    /// refuses what the CPU would refuse (then the guest gets #GP(0)).
    case writeExtendedControlRegister
    /// `rdpru` (0f 01 fd): #UD, as KVM answers it. KVM never offers RDPRU in
    /// the guest's CPUID (and intercepts it where the CPU has it), so #UD is
    /// what the guest gets on hardware virtualization too.
    case undefinedReadProcessorRegister
    /// `movbe` with a register operand (0f 38 f0/f1, mod = 3): #UD, as the
    /// CPU gives it (MOVBE only moves to or from memory).
    case undefinedRegisterMoveBigEndian
    /// `clwb m8` (66 [REX] 0f ae /6, mod != 3): writes a cache line back to
    /// memory. Guest RAM is the host's, always coherent, so the VMM has
    /// nothing to write back and moves RIP past it. The operand's address is
    /// not checked: a CLWB of an unmapped address would #PF on the CPU.
    case cacheLineWriteBack(length: UInt64)
    /// `invpcid` (66 [REX] 0f 38 82 /r) when the guest's CPUID does not offer
    /// INVPCID: #UD, as the CPU (and KVM, which intercepts it) gives. Where the
    /// CPUID offers it, the instruction is not assisted.
    case undefinedInvalidatePCID
    /// `xsave`, `xsaveopt`, `xsavec`, `xrstor` (and `xsaves`/`xrstors` as the
    /// #UD a guest whose CPUID lacks them gets): through `KVM_GET_XSAVE2` and
    /// `KVM_SET_XSAVE` with the guest's memory image (see `XSAVEImage`).
    case extendedState(ExtendedStateInstruction)
    /// `vzeroall`, `vzeroupper`, and `vmovdqa`/`vmovdqu`/`vmovntdqa`/`vmovntdq`
    /// with XMM or YMM registers (kvm-unit-tests' `xsave`): through the XSAVE
    /// state as the XSAVE family (see `VectorMove`).
    case vectorMove(VectorMove)
    /// `lsl` with a register source (see `loadSegmentLimit(_:)`).
    case loadSegmentLimit(destination: Int, source: Int, operandSize: Int, length: UInt64)

    /// The bytes of the instruction KVM failed on, from `struct
    /// kvm_run.emulation_failure`: flags (bit 0: bytes present), then a byte of
    /// length and up to 15 bytes, packed into `data[1...]` little-endian.
    static func instructionBytes(_ data: [UInt64]) -> [UInt8] {
        guard data.count >= 2, data[0] & 1 != 0 else { return [] }
        var bytes: [UInt8] = []
        for word in data.dropFirst() {
            for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: word >> (UInt64(i) * 8))) }
        }
        let length = Int(bytes.first ?? 0)
        return Array(bytes.dropFirst().prefix(min(length, 15)))
    }

    /// The assist for an emulation failure's report, if there is one.
    /// `guestHasINVPCID`: whether the guest's CPUID offers INVPCID (leaf 7, EBX bit 10).
    init?(emulationFailure data: [UInt64], guestHasINVPCID: Bool = true) {
        let bytes = Self.instructionBytes(data)
        if bytes.starts(with: [0xcc]) {
            self = .breakpoint
        } else if bytes.starts(with: [0x9b, 0xdb, 0xe3]) {
            self = .fpuInit(length: 3)
        } else if bytes.starts(with: [0xdb, 0xe3]) {
            self = .fpuInit(length: 2)
        } else if bytes.starts(with: [0x9b]) {
            self = .fwait
        } else if bytes.starts(with: [0x0f, 0x01, 0xca]) || bytes.starts(with: [0x0f, 0x01, 0xcb]) {
            self = .alignmentCheck(set: bytes[2] == 0xcb)
        } else if bytes.starts(with: [0x0f, 0x01, 0xd0]) {
            self = .readExtendedControlRegister
        } else if bytes.starts(with: [0x0f, 0x01, 0xd1]) {
            self = .writeExtendedControlRegister
        } else if bytes.starts(with: [0x0f, 0x01, 0xfd]) {
            self = .undefinedReadProcessorRegister
        } else if bytes.count >= 4, bytes.starts(with: [0x0f, 0x38]), bytes[2] & 0xfe == 0xf0, bytes[3] >> 6 == 3 {
            self = .undefinedRegisterMoveBigEndian
        } else if let clwb = Self.cacheLineWriteBack(bytes) {
            self = clwb
        } else if let xsave = ExtendedStateInstruction.decode(bytes) {
            self = .extendedState(xsave)
        } else if let move = VectorMove.decode(bytes) {
            self = .vectorMove(move)
        } else if !guestHasINVPCID, Self.isINVPCID(bytes) {
            self = .undefinedInvalidatePCID
        } else if let popcnt = Self.populationCount(bytes) {
            self = popcnt
        } else if let lsl = Self.loadSegmentLimit(bytes) {
            self = lsl
        } else {
            return nil
        }
    }

    /// `invpcid r, m128`: 66, an optional REX, 0f 38 82 and a ModRM byte with a memory operand.
    static func isINVPCID(_ bytes: [UInt8]) -> Bool {
        guard bytes.first == 0x66 else { return false }
        let index = bytes.count > 1 && bytes[1] & 0xf0 == 0x40 ? 2 : 1
        return bytes.count >= index + 4 && Array(bytes[index..<index + 3]) == [0x0f, 0x38, 0x82] && bytes[index + 3] >> 6 != 3
    }

    /// `clwb m8`: 66, an optional REX, 0f ae, a ModRM byte with reg = 6 and a
    /// memory operand, then its SIB byte and displacement (64-bit addressing).
    static func cacheLineWriteBack(_ bytes: [UInt8]) -> InstructionAssist? {
        var index = 0
        guard bytes.first == 0x66 else { return nil }
        index += 1
        if index < bytes.count, bytes[index] & 0xf0 == 0x40 { index += 1 }
        guard bytes.count >= index + 3, bytes[index] == 0x0f, bytes[index + 1] == 0xae else { return nil }
        let modrm = bytes[index + 2]
        let mod = modrm >> 6
        let rm = modrm & 7
        guard mod != 3, (modrm >> 3) & 7 == 6 else { return nil }
        var length = index + 3
        var displacement = [0, 1, 4][Int(mod)]
        if rm == 4 {
            // A SIB byte; with mod 0 and base 5 a 32-bit displacement and no base.
            guard bytes.count > length else { return nil }
            if mod == 0, bytes[length] & 7 == 5 { displacement = 4 }
            length += 1
        } else if mod == 0, rm == 5 {
            displacement = 4  // RIP-relative
        }
        return .cacheLineWriteBack(length: UInt64(length + displacement))
    }

    /// `popcnt reg, reg`: legacy prefixes (F3 required, 66 for 16 bits), an
    /// optional REX, 0f b8, and a ModRM byte naming two registers. Memory
    /// sources are not assisted: the kernel's `hweight` uses registers only.
    static func populationCount(_ bytes: [UInt8]) -> InstructionAssist? {
        guard let form = RegisterForm(bytes, opcode: 0xb8), form.repeatPrefix else { return nil }
        return .populationCount(
            destination: form.destination, source: form.source, operandSize: form.operandSize, length: UInt64(form.length))
    }
}

extension InstructionAssist {
    /// Carries out the instruction on `vcpu` as the CPU would (or raises the
    /// exception it would), and moves RIP past it. Returns `false` where this
    /// instance of it cannot be carried out (see `performExtendedState`).
    @discardableResult
    func perform(on vcpu: borrowing KVMVCPU, context: AssistContext = AssistContext()) throws(KVMError) -> Bool {
        if case .extendedState(let instruction) = self {
            return try Self.performExtendedState(instruction, on: vcpu, context: context)
        }
        if case .vectorMove(let move) = self { return try Self.performVectorMove(move, on: vcpu, context: context) }
        if case .loadSegmentLimit(let destination, let source, let size, let length) = self {
            return try Self.performLoadSegmentLimit(
                destination: destination, source: source, operandSize: size, length: length, on: vcpu, context: context)
        }
        try performOnRegisters(on: vcpu)
        return true
    }

    /// The assists that need only the vCPU's registers.
    private func performOnRegisters(on vcpu: borrowing KVMVCPU) throws(KVMError) {
        var registers = try vcpu.registers()
        switch self {
        case .breakpoint:
            // #BP is a trap: the handler sees RIP after the int3.
            registers.rip &+= 1
            try vcpu.setRegisters(registers)
            try vcpu.injectException(vector: 3)
        case .fwait:
            registers.rip &+= 1
            try vcpu.setRegisters(registers)
        case .fpuInit(let length):
            var fpu = try vcpu.fpu()
            fpu.fcw = 0x37f
            fpu.fsw = 0
            fpu.ftwx = 0
            fpu.lastOpcode = 0
            fpu.lastIP = 0
            fpu.lastDP = 0
            // Some back ends (PVM) read MXCSR back as 0; writing that would
            // unmask every SSE exception. FNINIT leaves MXCSR alone.
            if fpu.mxcsr == 0 { fpu.mxcsr = 0x1f80 }
            try vcpu.setFPU(fpu)
            registers.rip &+= length
            try vcpu.setRegisters(registers)
        case .alignmentCheck(let set):
            guard try vcpu.specialRegisters().cs.dpl == 0 else { return try vcpu.injectException(vector: Self.invalidOpcode) }
            registers.rflags = set ? registers.rflags | Self.alignmentCheckFlag : registers.rflags & ~Self.alignmentCheckFlag
            registers.rip &+= 3
            try vcpu.setRegisters(registers)
        case .populationCount(let destination, let source, let size, let length):
            let mask: UInt64 = size == 8 ? .max : (1 << (UInt64(size) * 8)) - 1
            let value = registers[number: source] & mask
            let count = UInt64(value.nonzeroBitCount)
            switch size {
            case 2: registers[number: destination] = registers[number: destination] & ~mask | count
            default: registers[number: destination] = count  // a 32-bit write zero-extends
            }
            registers.rflags &= ~Self.arithmeticFlags
            if value == 0 { registers.rflags |= Self.zeroFlag }
            registers.rip &+= length
            try vcpu.setRegisters(registers)
        case .readExtendedControlRegister:
            guard try vcpu.specialRegisters().cr4 & Self.osxsave != 0 else { return try vcpu.injectException(vector: Self.invalidOpcode) }
            let index = UInt32(truncatingIfNeeded: registers.rcx)
            guard let xcr = try vcpu.xcrs().first(where: { $0.index == index }) else {
                return try vcpu.injectException(vector: Self.generalProtection, errorCode: 0)
            }
            registers.rax = xcr.value & 0xffff_ffff
            registers.rdx = xcr.value >> 32
            registers.rip &+= 3
            try vcpu.setRegisters(registers)
        case .writeExtendedControlRegister:
            let special = try vcpu.specialRegisters()
            guard special.cr4 & Self.osxsave != 0 else { return try vcpu.injectException(vector: Self.invalidOpcode) }
            guard special.cs.dpl == 0 else { return try vcpu.injectException(vector: Self.generalProtection, errorCode: 0) }
            let value = (registers.rdx & 0xffff_ffff) << 32 | registers.rax & 0xffff_ffff
            do {
                try vcpu.setXCRs([XCR(index: UInt32(truncatingIfNeeded: registers.rcx), value: value)])
            } catch .failed(.setXCRs, .invalidArgument) {
                // KVM checks the index and value as the CPU does (XCR0 bit 0,
                // AVX without SSE, bits the guest's CPUID lacks): #GP(0).
                return try vcpu.injectException(vector: Self.generalProtection, errorCode: 0)
            }
            registers.rip &+= 3
            try vcpu.setRegisters(registers)
        case .undefinedReadProcessorRegister, .undefinedRegisterMoveBigEndian, .undefinedInvalidatePCID:
            // A fault: RIP stays at the instruction.
            try vcpu.injectException(vector: Self.invalidOpcode)
        case .cacheLineWriteBack(let length):
            registers.rip &+= length
            try vcpu.setRegisters(registers)
        case .extendedState, .vectorMove, .loadSegmentLimit:
            break  // performExtendedState, performVectorMove, performLoadSegmentLimit
        }
    }

    static let invalidOpcode: UInt8 = 6
    static let generalProtection: UInt8 = 13
    static let alignmentCheckFlag: UInt64 = 1 << 18
    static let zeroFlag: UInt64 = 1 << 6
    /// CF, PF, AF, ZF, SF and OF.
    static let arithmeticFlags: UInt64 = 0x8d5
    /// CR4.OSXSAVE: without it XGETBV and XSETBV are #UD.
    static let osxsave: UInt64 = 1 << 18
}
