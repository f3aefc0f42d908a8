import GuestMemory
import Testing
import VMCore
import X86Boot

@Suite struct SegmentDescriptorTests {
    @Test func encodingsMatchTheSDM() {
        // The classic flat descriptors every x86 boot loader writes.
        #expect(SegmentDescriptor.flatCode32.encoded == 0x00cf_9b00_0000_ffff)
        #expect(SegmentDescriptor.flatData.encoded == 0x00cf_9300_0000_ffff)
        #expect(SegmentDescriptor.code64.encoded == 0x00af_9b00_0000_ffff)
    }

    @Test func hiddenStateExpandsThePageGranularLimit() {
        let segment = SegmentDescriptor.flatCode32.segment(selector: 0x08)
        #expect(segment.limit == 0xffff_ffff)
        #expect(segment.selector == 0x08)
        #expect(segment.db && segment.g && !segment.l && segment.present && segment.s)
        #expect(SegmentDescriptor.code64.segment(selector: 0x18).l)
    }
}

@Suite struct EntryStateTests {
    @Test func realModeStartsAtZeroColonEntryWithStackBelow() throws {
        let state = try CPUSetup.realMode(entry: 0x7c00, stackTop: 0x7c00)
        #expect(state.registers.rip == 0x7c00)
        #expect(state.registers.rsp == 0x7c00)
        #expect(state.specialRegisters.cs.selector == 0 && state.specialRegisters.cs.base == 0)
        #expect(state.specialRegisters.ss.base == 0 && state.specialRegisters.ss.limit == 0xffff)
        #expect(state.specialRegisters.cr0 & ControlBits.cr0PE == 0)
        #expect(throws: BootError.realModeEntryTooHigh(entry: 0x10000)) { _ = try CPUSetup.realMode(entry: 0x10000, stackTop: 0x10000) }
    }

    @Test func protectedModeHasFlatSegmentsAndNoPaging() throws {
        let memory = try GuestMemory(size: 1 << 20)
        let state = try CPUSetup.protectedMode(entry: 0x10_0000, stackTop: 0x10_0000, memory: memory)
        let special = state.specialRegisters
        #expect(special.cr0 & ControlBits.cr0PE != 0)
        #expect(special.cr0 & ControlBits.cr0PG == 0)
        #expect(special.cs.selector == GDTSelector.code32 && special.cs.db && special.cs.limit == 0xffff_ffff)
        #expect(special.ds.selector == GDTSelector.data && special.ss.selector == GDTSelector.data)
        #expect(special.gdt == DescriptorTable(base: 0x500, limit: 31))
        let gdt0 = try memory.readInteger(at: GuestAddress(0x500), as: UInt64.self)
        let gdt1 = try memory.readInteger(at: GuestAddress(0x508), as: UInt64.self)
        let gdt2 = try memory.readInteger(at: GuestAddress(0x510), as: UInt64.self)
        #expect(gdt0 == 0)
        #expect(gdt1 == SegmentDescriptor.flatCode32.encoded)
        #expect(gdt2 == SegmentDescriptor.flatData.encoded)
        #expect(state.registers.rip == 0x10_0000 && state.registers.rsp == 0x10_0000)
    }

    @Test func longModeEnablesPagingPAEAndLME() throws {
        let memory = try GuestMemory(size: 2 << 20)
        let state = try CPUSetup.longMode(entry: 0x10_0000, stackTop: 0x10_0008, memory: memory)
        let special = state.specialRegisters
        #expect(special.cr0 & (ControlBits.cr0PE | ControlBits.cr0PG) == ControlBits.cr0PE | ControlBits.cr0PG)
        #expect(special.cr4 & ControlBits.cr4PAE != 0)
        #expect(special.efer == ControlBits.eferLME | ControlBits.eferLMA)
        #expect(special.cr3 == X86Layout.pml4.rawValue)
        #expect(special.cs.l && !special.cs.db && special.cs.selector == GDTSelector.code64)
        #expect(state.registers.rsp == 0x10_0000, "the stack is 16-byte aligned below the image")
        let gdt3 = try memory.readInteger(at: GuestAddress(0x518), as: UInt64.self)
        #expect(gdt3 == SegmentDescriptor.code64.encoded)
    }

    @Test func identityMapCoversTheFirst4GiBWith2MiBPages() throws {
        let memory = try GuestMemory(size: 2 << 20)
        try PageTables.writeIdentityMap(memory: memory)
        let pml4 = try memory.readInteger(at: X86Layout.pml4, as: UInt64.self)
        #expect(pml4 == X86Layout.pdpt.rawValue | 0b111)
        for g in UInt64(0)..<4 {
            let pdpte = try memory.readInteger(at: GuestAddress(X86Layout.pdpt.rawValue + g * 8), as: UInt64.self)
            #expect(pdpte == (X86Layout.pageDirectories.rawValue + g * 0x1000) | 0b111)
        }
        let beyond = try memory.readInteger(at: GuestAddress(X86Layout.pdpt.rawValue + 4 * 8), as: UInt64.self)
        #expect(beyond == 0, "nothing mapped above 4 GiB when there is no RAM there")
        // Every 2 MiB page maps to itself: check the first, the last and one in the MMIO hole.
        for index: UInt64 in [0, 1, 0x680, 2047] {
            let pde = try memory.readInteger(at: GuestAddress(X86Layout.pageDirectories.rawValue + index * 8), as: UInt64.self)
            #expect(pde == (index << 21) | 0b1000_0111)
        }
    }

    @Test func ramAbove4GiBIsMappedWith1GiBPages() throws {
        let memory = try GuestMemory(size: 6 << 30)
        try PageTables.writeIdentityMap(memory: memory)
        let g4 = try memory.readInteger(at: GuestAddress(X86Layout.pdpt.rawValue + 4 * 8), as: UInt64.self)
        let g5 = try memory.readInteger(at: GuestAddress(X86Layout.pdpt.rawValue + 5 * 8), as: UInt64.self)
        let g6 = try memory.readInteger(at: GuestAddress(X86Layout.pdpt.rawValue + 6 * 8), as: UInt64.self)
        #expect(g4 == (4 << 30) | 0b1000_0111)
        #expect(g5 == (5 << 30) | 0b1000_0111)
        #expect(g6 == 0)
    }

    @Test func tooLittleMemoryForTheTablesIsAnError() throws {
        let memory = try GuestMemory(size: 0x2000)
        #expect(throws: BootError.self) { _ = try CPUSetup.longMode(entry: 0x1000, stackTop: 0x1000, memory: memory) }
    }
}
