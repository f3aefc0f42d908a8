import GuestMemory
import VMCore

/// The CPU state a guest starts with: what the VMM loads into the vCPU before
/// the first `KVM_RUN`.
public struct EntryState: Hashable, Sendable {
    public var registers: Registers
    public var specialRegisters: SpecialRegisters

    public init(registers: Registers, specialRegisters: SpecialRegisters) {
        self.registers = registers
        self.specialRegisters = specialRegisters
    }
}

/// Control-register bits, named as in the Intel SDM vol. 3, 2.5.
public enum ControlBits {
    public static let cr0PE: UInt64 = 1 << 0
    public static let cr0MP: UInt64 = 1 << 1
    public static let cr0ET: UInt64 = 1 << 4
    public static let cr0NE: UInt64 = 1 << 5
    public static let cr0WP: UInt64 = 1 << 16
    public static let cr0PG: UInt64 = 1 << 31
    public static let cr4PAE: UInt64 = 1 << 5
    public static let cr4OSFXSR: UInt64 = 1 << 9
    public static let cr4OSXMMEXCPT: UInt64 = 1 << 10
    public static let eferLME: UInt64 = 1 << 8
    public static let eferLMA: UInt64 = 1 << 10
}

/// Builds the entry state for each CPU mode, writing whatever tables that mode
/// needs (GDT, page tables) into guest memory.
public enum CPUSetup {
    /// The GDT written for protected and long mode: null, 32-bit code, data, 64-bit code.
    public static let gdtEntries: [SegmentDescriptor?] = [nil, .flatCode32, .flatData, .code64]

    /// The state for `mode`, entering at `entry` with the stack just below `stackTop`.
    public static func entryState(
        mode: CPUMode, entry: UInt64, stackTop: UInt64, memory: borrowing GuestMemory
    ) throws(BootError) -> EntryState {
        switch mode {
        case .real: return try realMode(entry: entry, stackTop: stackTop)
        case .protected: return try protectedMode(entry: entry, stackTop: stackTop, memory: memory)
        case .long: return try longMode(entry: entry, stackTop: stackTop, memory: memory)
        }
    }

    /// The state for `mode` with the GDT, page tables and stack where `structures` says.
    public static func entryState(
        mode: CPUMode, entry: UInt64, structures: BootStructures, memory: borrowing GuestMemory
    ) throws(BootError) -> EntryState {
        switch mode {
        case .real: return try realMode(entry: entry, stackTop: structures.stackTop)
        case .protected:
            return try protectedMode(entry: entry, stackTop: structures.stackTop, memory: memory, gdt: GuestAddress(structures.gdt))
        case .long:
            return try longMode(
                entry: entry, stackTop: structures.stackTop, memory: memory, gdt: GuestAddress(structures.gdt),
                pageTables: GuestAddress(structures.pageTables ?? X86Layout.pml4.rawValue))
        }
    }

    /// Real mode as after a reset, but at CS:IP = 0:`entry` with SS:SP = 0:`stackTop`.
    public static func realMode(entry: UInt64, stackTop: UInt64) throws(BootError) -> EntryState {
        guard entry <= 0xffff else { throw .realModeEntryTooHigh(entry: entry) }
        var registers = Registers()
        registers.rip = entry
        // SP wraps like the CPU does: a stack "at 0x10000" is SP = 0 and grows down to 0xfffe.
        registers.rsp = stackTop & 0xffff
        var special = SpecialRegisters()
        for keyPath in [\SpecialRegisters.ds, \.es, \.fs, \.gs, \.ss] {
            special[keyPath: keyPath] = Segment(base: 0, limit: 0xffff, selector: 0, type: 0x3)
        }
        special.cs = Segment(base: 0, limit: 0xffff, selector: 0, type: 0xb)
        special.cr0 = ControlBits.cr0ET
        return EntryState(registers: registers, specialRegisters: special)
    }

    /// 32-bit protected mode with flat 4 GiB segments and paging off, the GDT at `gdt`.
    public static func protectedMode(
        entry: UInt64, stackTop: UInt64, memory: borrowing GuestMemory, gdt: GuestAddress = X86Layout.gdt
    ) throws(BootError) -> EntryState {
        try writeGDT(memory: memory, at: gdt)
        var registers = Registers()
        registers.rip = entry
        registers.rsp = stackTop
        var special = SpecialRegisters()
        special.cs = SegmentDescriptor.flatCode32.segment(selector: GDTSelector.code32)
        setDataSegments(&special)
        special.gdt = DescriptorTable(base: gdt.rawValue, limit: UInt16(gdtEntries.count * 8 - 1))
        special.cr0 = ControlBits.cr0PE | ControlBits.cr0ET | ControlBits.cr0NE
        return EntryState(registers: registers, specialRegisters: special)
    }

    /// 64-bit long mode with every byte of the first 4 GiB and all of RAM
    /// identity-mapped, and SSE enabled so compiled code runs; the GDT at
    /// `gdt`, the page tables in the 24 KiB at `pageTables`.
    public static func longMode(
        entry: UInt64, stackTop: UInt64, memory: borrowing GuestMemory, gdt: GuestAddress = X86Layout.gdt,
        pageTables: GuestAddress = X86Layout.pml4
    ) throws(BootError) -> EntryState {
        try writeGDT(memory: memory, at: gdt)
        try PageTables.writeIdentityMap(memory: memory, at: pageTables)
        var registers = Registers()
        registers.rip = entry
        registers.rsp = stackTop & ~0xf  // the SysV ABI wants a 16-byte aligned stack
        var special = SpecialRegisters()
        special.cs = SegmentDescriptor.code64.segment(selector: GDTSelector.code64)
        setDataSegments(&special)
        special.gdt = DescriptorTable(base: gdt.rawValue, limit: UInt16(gdtEntries.count * 8 - 1))
        special.cr3 = pageTables.rawValue
        special.cr4 = ControlBits.cr4PAE | ControlBits.cr4OSFXSR | ControlBits.cr4OSXMMEXCPT
        special.cr0 = ControlBits.cr0PE | ControlBits.cr0MP | ControlBits.cr0ET | ControlBits.cr0NE | ControlBits.cr0WP | ControlBits.cr0PG
        special.efer = ControlBits.eferLME | ControlBits.eferLMA
        return EntryState(registers: registers, specialRegisters: special)
    }

    static func setDataSegments(_ special: inout SpecialRegisters) {
        let data = SegmentDescriptor.flatData.segment(selector: GDTSelector.data)
        special.ds = data
        special.es = data
        special.fs = data
        special.gs = data
        special.ss = data
        // VT-x refuses to enter with an unusable TR; a 64-bit busy TSS at 0 is
        // never used by guests that do not switch stacks on interrupts.
        special.tr = Segment(base: 0, limit: 0x67, selector: 0, type: 0xb, s: false)
    }

    /// Writes `gdtEntries` at `gdt`.
    public static func writeGDT(memory: borrowing GuestMemory, at gdt: GuestAddress = X86Layout.gdt) throws(BootError) {
        for (i, descriptor) in gdtEntries.enumerated() {
            do {
                try memory.writeInteger(descriptor?.encoded ?? 0, at: GuestAddress(gdt.rawValue + UInt64(i * 8)))
            } catch {
                throw .memoryTooSmall(size: memory.size, minimum: X86Layout.minimumProtectedLoadAddress)
            }
        }
    }
}

/// The long-mode identity map.
public enum PageTables {
    static let present: UInt64 = 1 << 0
    static let writable: UInt64 = 1 << 1
    /// Set at every level so that guests may drop to ring 3 without building tables of their own.
    static let user: UInt64 = 1 << 2
    static let pageSize: UInt64 = 1 << 7
    static let gib: UInt64 = 1 << 30

    /// Writes PML4, PDPT and page directories that identity-map the first 4 GiB
    /// with 2 MiB pages and any RAM above 4 GiB with 1 GiB pages, in the
    /// 24 KiB at `base`: PML4, PDPT, then four page directories.
    public static func writeIdentityMap(memory: borrowing GuestMemory, at base: GuestAddress = X86Layout.pml4) throws(BootError) {
        let pml4 = base.rawValue
        let pdpt = pml4 + 0x1000
        let pageDirectories = pml4 + 0x2000
        let flags = present | writable | user
        let highestRAM = memory.ranges.map { $0.base.rawValue + $0.size }.max() ?? 0
        let gibs = min(max(4, (highestRAM + gib - 1) / gib), 512)
        do {
            try memory.fill(0, count: X86Layout.structuresEnd - X86Layout.pml4.rawValue, at: base)
            try memory.writeInteger(pdpt | flags, at: base)
            for g in 0..<gibs {
                let entry = g < 4 ? (pageDirectories + g * 0x1000) | flags : (g * gib) | flags | pageSize
                try memory.writeInteger(entry, at: GuestAddress(pdpt + g * 8))
            }
            for i in 0..<UInt64(4 * 512) {
                let entry = (i << 21) | flags | pageSize
                try memory.writeInteger(entry, at: GuestAddress(pageDirectories + i * 8))
            }
        } catch {
            throw .memoryTooSmall(size: memory.size, minimum: X86Layout.minimumProtectedLoadAddress)
        }
    }
}
