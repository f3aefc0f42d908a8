import KVM
import VMCore

extension InstructionAssist {
    /// Carries out `ldmxcsr` or `stmxcsr` (Linux's `kernel_fpu_begin` loads
    /// MXCSR; this PVM host cannot emulate either) through the vCPU's XSAVE
    /// state, raising what the CPU raises: #UD with CR0.EM set or CR4.OSFXSR
    /// clear, #NM with CR0.TS set, #GP(0) for reserved MXCSR bits, #PF (CR2
    /// set) where the operand is not mapped or, for a store, not writable.
    /// Returns `false` where it cannot (16-bit addressing, an operand outside RAM).
    static func performControlStatus(
        _ instruction: ExtendedStateInstruction, on vcpu: borrowing KVMVCPU, context: AssistContext
    ) throws(KVMError) -> Bool {
        guard let memory = context.memory else { return false }
        var registers = try vcpu.registers()
        let special = try vcpu.specialRegisters()
        if special.cr0 & emulateCoprocessor != 0 || special.cr4 & osfxsr == 0 {
            try vcpu.injectException(vector: invalidOpcode)
            return true
        }
        if special.cr0 & taskSwitched != 0 {
            try vcpu.injectException(vector: deviceNotAvailable)
            return true
        }
        let longMode = special.cs.l && special.efer & (1 << 10) != 0
        guard !instruction.hasREX || longMode,
            let address = instruction.operand.linearAddress(
                registers: registers, special: special, nextRIP: registers.rip &+ instruction.length)
        else { return false }
        let access = GuestLinearAccess(memory: memory, walk: PageWalk(special: special, rflags: registers.rflags))
        var state = try vcpu.xsave()
        let store = instruction.form == .storeMXCSR
        let loaded: [UInt8]
        do throws(GuestLinearAccess.Failure) {
            let pages = try access.pages(address, count: 4, write: store)
            if store {
                let value = XSAVEImage.storedMXCSR(state)
                try access.write((0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }[...], pages, address, offset: 0)
                loaded = []
            } else {
                loaded = try access.read(pages, address, count: 4)
            }
        } catch { return try raise(error, special: special, on: vcpu) }
        if !store {
            let value = loaded.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
            do throws(XSAVEImage.Fault) {
                try XSAVEImage.loadMXCSR(value, into: &state)
            } catch {
                try vcpu.injectException(vector: generalProtection, errorCode: 0)
                return true
            }
            try vcpu.setXSAVE(state)
        }
        registers.rip &+= instruction.length
        try vcpu.setRegisters(registers)
        return true
    }

    static let emulateCoprocessor: UInt64 = 1 << 2
    static let taskSwitched: UInt64 = 1 << 3
    static let osfxsr: UInt64 = 1 << 9
    static let deviceNotAvailable: UInt8 = 7
}
