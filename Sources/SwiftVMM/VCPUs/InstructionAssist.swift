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
    init?(emulationFailure data: [UInt64]) {
        let bytes = Self.instructionBytes(data)
        if bytes.starts(with: [0xcc]) {
            self = .breakpoint
        } else if bytes.starts(with: [0x9b, 0xdb, 0xe3]) {
            self = .fpuInit(length: 3)
        } else if bytes.starts(with: [0xdb, 0xe3]) {
            self = .fpuInit(length: 2)
        } else if bytes.starts(with: [0x9b]) {
            self = .fwait
        } else {
            return nil
        }
    }
}

extension InstructionAssist {
    /// Carries out the instruction on `vcpu` as the CPU would, and moves RIP past it.
    func perform(on vcpu: borrowing KVMVCPU) throws(KVMError) {
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
        }
    }
}
