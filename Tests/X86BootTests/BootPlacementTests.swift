import GuestMemory
import Testing
import VMCore

@testable import X86Boot

/// The VMM's GDT, page tables, stack and Multiboot information never land on
/// the image: they go to their usual addresses when free and around the image
/// otherwise, and an image is refused only when RAM cannot hold both.
@Suite struct BootPlacementTests {
    typealias F = MultibootFixtures
    static let ramSize: UInt64 = 16 << 20

    /// Whether any two of `ranges` overlap.
    func overlapping(_ ranges: [(String, Range<UInt64>)]) -> [String] {
        var found: [String] = []
        for (i, a) in ranges.enumerated() {
            for b in ranges[(i + 1)...] where a.1.overlaps(b.1) { found.append("\(a.0) \(a.1) overlaps \(b.0) \(b.1)") }
        }
        return found
    }

    @Test func thePlannerPrefersTheUsualAddressThenTheLowestFreePlace() {
        var planner = BootMemoryPlanner(available: [0..<0x10000, 0x8000..<0x20000], occupied: [0x400..<0x9000])
        #expect(planner.free == [0..<0x400, 0x9000..<0x20000])
        #expect(planner.claim(size: 0x20, alignment: 8, preferred: 0x500) == 0x9000, "0x500 is taken: the lowest free above 0x500")
        #expect(planner.claim(size: 0x100, alignment: 0x1000, preferred: 0x1_0000) == 0x1_0000)
        #expect(planner.claim(size: 0x100, alignment: 0x1000) == 0xa000)
        #expect(planner.claim(size: 0x2_0000, alignment: 8) == nil)
        #expect(planner.isFree(0x9020..<0xa000))
        var low = BootMemoryPlanner(available: [0..<0x1000], occupied: [0x500..<0x1000])
        #expect(low.claim(size: 0x100, alignment: 16) == 0, "below 0x500 when nothing above it is free")
    }

    /// Images at every awkward address: at 0, over the usual GDT (0x500), the
    /// boot sector (0x7c00), the usual stack top and Multiboot information
    /// (0x8000, 0x9000), just below the EBDA, and at the top of RAM.
    static let multibootAddresses: [UInt32] = [0, 0x500, 0x7c00, 0x8000, 0x9000, 0x9_d000, UInt32(ramSize) - 0x2000]

    @Test(arguments: multibootAddresses) func aMultibootKernelAnywhereInRAMGetsItsStructuresBesideIt(address: UInt32) throws {
        let memory = try GuestMemory(size: Self.ramSize)
        let map = try E820Map(guestRAM: memory.ranges)
        let kernel = try MultibootKernel(parsing: F.elf32(header: F.header(flags: 0), physical: address))
        let modules = [
            MultibootModule(bytes: Array("module".utf8), commandLine: "a.mod x"),
            MultibootModule(bytes: [UInt8](repeating: 7, count: 5000), commandLine: "b.mod"),
        ]
        let plan = try kernel.load(commandLine: "k.elf args", modules: modules, memoryMap: map, into: memory)
        var ranges: [(String, Range<UInt64>)] = [
            ("kernel", UInt64(address)..<UInt64(address) + 0x2000),
            ("info", plan.info.rawValue..<plan.info.rawValue + plan.infoSize),
            ("GDT", plan.gdt.rawValue..<plan.gdt.rawValue + BootStructures.gdtSize),
            ("stack", plan.stackTop.rawValue - MultibootLayout.stackSize..<plan.stackTop.rawValue),
        ]
        for (i, module) in plan.modules.enumerated() {
            ranges.append(("module \(i)", module.address.rawValue..<module.address.rawValue + max(module.size, 1)))
        }
        #expect(overlapping(ranges).isEmpty, "\(overlapping(ranges))")
        for (name, range) in ranges {
            #expect(map.containsRAM(address: range.lowerBound, size: UInt64(range.count)), "\(name) \(range) is in usable RAM")
        }
        // The kernel's bytes are intact and the information decodes.
        let code = try memory.read(count: F.code.count, at: GuestAddress(UInt64(plan.entry.rawValue)))
        #expect(code == F.code)
        let info = try DecodedMultibootInfo(memory: memory, at: plan.info)
        #expect(info.commandLine == "k.elf args")
        #expect(info.modules.map(\.commandLine) == ["a.mod x", "b.mod"])
        if address >= 0xa000 {
            #expect(plan.info == MultibootLayout.info && plan.gdt == X86Layout.gdt && plan.stackTop == MultibootLayout.stackTop)
        }
    }

    @Test func realmodeFlatLinkedAt0x8000GetsItsInformationAfterTheKernel() throws {
        // kvm-unit-tests' realmode.flat: 0x8000-0xa86c and 0xb000-0xda30.
        let memory = try GuestMemory(size: Self.ramSize)
        let map = try E820Map(guestRAM: memory.ranges)
        let kernel = try MultibootKernel(parsing: F.elf32(header: F.header(flags: 0), physical: 0x8000, memorySize: 0x5a30))
        let plan = try kernel.load(commandLine: "realmode.flat", memoryMap: map, into: memory)
        #expect(plan.gdt == X86Layout.gdt, "0x500 is free")
        #expect(plan.stackTop.rawValue <= 0x8000 || plan.stackTop.rawValue - MultibootLayout.stackSize >= 0xda30)
        #expect(plan.info.rawValue >= 0xda30, "the information goes after the kernel, as QEMU puts it")
    }

    /// Flat and ELF images in protected and long mode: the same addresses,
    /// plus just below 1 MiB (RAM to a flat or ELF guest, which gets no memory map).
    static let imageAddresses: [UInt64] = [0, 0x500, 0x7c00, 0x8000, 0x9000, 0xf_f000, ramSize - 0x1000]

    @Test(arguments: imageAddresses) func longModeStructuresAvoidTheImage(address: UInt64) throws {
        let memory = try GuestMemory(size: Self.ramSize)
        let image = address..<address + 0x1000
        try memory.fill(0xcc, count: 0x1000, at: GuestAddress(address))
        let structures = try BootStructures.place(mode: .long, occupied: [image], available: [0..<Self.ramSize], stackBelow: address)
        let tables = try #require(structures.pageTables)
        let ranges: [(String, Range<UInt64>)] = [
            ("image", image), ("GDT", structures.gdt..<structures.gdt + BootStructures.gdtSize),
            ("page tables", tables..<tables + 0x6000),
            ("stack", structures.stackTop - BootStructures.stackSize..<structures.stackTop),
        ]
        #expect(overlapping(ranges).isEmpty, "\(overlapping(ranges))")
        let state = try CPUSetup.entryState(mode: .long, entry: address, structures: structures, memory: memory)
        #expect(state.specialRegisters.cr3 == tables && state.specialRegisters.gdt.base == structures.gdt)
        #expect(try memory.read(count: 0x1000, at: GuestAddress(address)).allSatisfy { $0 == 0xcc }, "the image is intact")
        // The tables identity-map the image's page.
        let pdpte = try memory.readInteger(at: GuestAddress(tables + 0x1000), as: UInt64.self)
        #expect(pdpte & ~0xfff == tables + 0x2000)
        if address >= 0x8000 {
            #expect(structures == .fixed(stackTop: address, pageTables: true), "the usual places when they are free")
        }
    }

    @Test func anELFWithAHeadersOnlySegmentAtZeroLoads() throws {
        let memory = try GuestMemory(size: 2 << 20)
        let elf = try ELF64Image(parsing: makeELF(entry: 0x1000, segments: [(0, [0x7f], 0x1000), (0x1000, [0x90, 0xf4], 0x7000)]))
        let image = try elf.load(into: memory)
        let occupied = elf.segments.map { $0.physicalAddress..<$0.physicalAddress + $0.memorySize }
        let structures = try BootStructures.place(
            mode: .long, occupied: occupied, available: [0..<(2 << 20)], stackBelow: image.lowestAddress)
        #expect(structures.gdt >= 0x8000 && structures.pageTables! >= 0x8000 && structures.stackTop - BootStructures.stackSize >= 0x8000)
    }

    @Test func anImageIsRefusedOnlyWhenRAMCannotHoldBoth() throws {
        // 1 MiB of RAM, all of it image but 16 KiB: no room for 24 KiB of page tables.
        let ram: [Range<UInt64>] = [0..<(1 << 20)]
        #expect(throws: BootError.noRoomForBootStructures(what: "the long-mode page tables", size: 0x6000)) {
            try BootStructures.place(mode: .long, occupied: [0x4000..<(1 << 20)], available: ram, stackBelow: 0x4000)
        }
        // Protected mode needs only the GDT and a stack: they fit.
        let protected = try BootStructures.place(mode: .protected, occupied: [0x4000..<(1 << 20)], available: ram, stackBelow: 0x4000)
        #expect(protected.gdt == 0x500 && protected.stackTop == 0x4000)
        #expect(throws: BootError.noRoomForBootStructures(what: "the GDT", size: 32)) {
            try BootStructures.place(mode: .protected, occupied: ram, available: ram, stackBelow: 0)
        }
    }
}
