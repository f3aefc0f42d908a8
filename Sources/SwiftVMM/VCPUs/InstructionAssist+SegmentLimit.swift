import GuestMemory
import KVM
import VMCore

extension InstructionAssist {
    /// `lsl reg, reg`: legacy prefixes (66 for 16 bits), an optional REX,
    /// 0f 03, and a ModRM byte naming two registers. Linux's NMI, #DB and
    /// #MC entry (`paranoid_entry` with FSGSBASE) runs `lsl %rax, %rax` on its
    /// per-CPU segment to find its CPU number; a memory source is not assisted.
    static func loadSegmentLimit(_ bytes: [UInt8]) -> InstructionAssist? {
        guard let form = RegisterForm(bytes, opcode: 0x03), !form.repeatPrefix else { return nil }
        return .loadSegmentLimit(
            destination: form.destination, source: form.source, operandSize: form.operandSize, length: UInt64(form.length))
    }

    /// Carries out LSL as the SDM describes it: the descriptor the source's
    /// selector names, read from the GDT or LDT at their linear bases (a
    /// supervisor access: #PF as the CPU raises it), must be a code or data
    /// segment, an LDT or a TSS that the current privilege level and the
    /// selector's RPL may see (conforming code always); then ZF = 1 and the
    /// destination gets the byte-granular limit. Otherwise ZF = 0 and the
    /// destination is kept. Returns `false` where the table is outside RAM.
    static func performLoadSegmentLimit(
        destination: Int, source: Int, operandSize: Int, length: UInt64, on vcpu: borrowing KVMVCPU, context: AssistContext
    ) throws(KVMError) -> Bool {
        guard let memory = context.memory else { return false }
        var registers = try vcpu.registers()
        let special = try vcpu.specialRegisters()
        let selector = UInt16(truncatingIfNeeded: registers[number: source])
        var walk = PageWalk(special: special, rflags: registers.rflags)
        walk.userMode = false
        let access = GuestLinearAccess(memory: memory, walk: walk)
        let longMode = special.efer & (1 << 10) != 0

        var limit: UInt64?
        let offset = UInt64(selector & ~7)
        let inLDT = selector & 4 != 0
        let table: (base: UInt64, limit: UInt64)? =
            inLDT
            ? (special.ldt.unusable || !special.ldt.present ? nil : (special.ldt.base, UInt64(special.ldt.limit)))
            : (selector & ~3 == 0 ? nil : (special.gdt.base, UInt64(special.gdt.limit)))
        if let table, offset + 7 <= table.limit {
            let address = table.base &+ offset
            let bytes: [UInt8]
            do throws(GuestLinearAccess.Failure) {
                bytes = try access.read(try access.pages(address, count: 8, write: false), address, count: 8)
            } catch { return try raise(error, special: special, on: vcpu) }
            let descriptor = bytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            limit = visibleLimit(descriptor, selector: selector, cpl: special.cs.dpl, longMode: longMode)
        }
        if let limit {
            let mask: UInt64 = operandSize == 2 ? 0xffff : .max
            // A 32-bit destination is zero-extended, a 16-bit one keeps the rest.
            registers[number: destination] = operandSize == 2 ? registers[number: destination] & ~mask | limit & mask : limit
            registers.rflags |= zeroFlag
        } else {
            registers.rflags &= ~zeroFlag
        }
        registers.rip &+= length
        try vcpu.setRegisters(registers)
        return true
    }

    /// The byte-granular limit of `descriptor` if LSL may report it to code
    /// at `cpl` using `selector`, else `nil`.
    static func visibleLimit(_ descriptor: UInt64, selector: UInt16, cpl: UInt8, longMode: Bool) -> UInt64? {
        let type = UInt8((descriptor >> 40) & 0xf)
        let isCodeOrData = descriptor & (1 << 44) != 0
        let dpl = UInt8((descriptor >> 45) & 3)
        if isCodeOrData {
            let conformingCode = type & 0b1100 == 0b1100
            guard conformingCode || (dpl >= cpl && dpl >= UInt8(selector & 3)) else { return nil }
        } else {
            // LDT and available or busy TSS; the 16-bit TSS types only outside long mode.
            let allowed: Set<UInt8> = longMode ? [2, 9, 11] : [1, 2, 3, 9, 11]
            guard allowed.contains(type), dpl >= cpl, dpl >= UInt8(selector & 3) else { return nil }
        }
        var limit = (descriptor & 0xffff) | ((descriptor >> 32) & 0xf_0000)
        if descriptor & (1 << 55) != 0 { limit = limit << 12 | 0xfff }
        return limit
    }
}
