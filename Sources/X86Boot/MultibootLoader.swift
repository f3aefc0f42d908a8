import GuestMemory
import VMCore

/// A boot module handed to a Multiboot kernel: its bytes and its command line
/// (QEMU's `-initrd "file args"` passes the whole `file args` string).
public struct MultibootModule: Hashable, Sendable {
    public var bytes: [UInt8]
    public var commandLine: String

    public init(bytes: [UInt8], commandLine: String) {
        self.bytes = bytes
        self.commandLine = commandLine
    }
}

/// Where a Multiboot kernel and everything handed to it went, and how to enter it.
public struct MultibootBootPlan: Hashable, Sendable {
    /// Where a module went (its command line is in the information block).
    public struct Module: Hashable, Sendable {
        public var address: GuestAddress
        public var size: UInt64
    }

    /// Where execution starts, in 32-bit protected mode with paging off.
    public var entry: GuestAddress
    /// The Multiboot information structure; EBX at entry.
    public var info: GuestAddress
    /// The length of the information block (structure, memory map, module list, strings).
    public var infoSize: UInt64
    /// Where the GDT goes (`CPUSetup.protectedMode(...gdt:)` writes it): free RAM of `BootStructures.gdtSize` bytes.
    public var gdt: GuestAddress
    /// ESP at entry.
    public var stackTop: GuestAddress
    /// The lowest and one past the highest byte the kernel occupies (its `.bss` included).
    public var kernelStart: GuestAddress
    public var kernelEnd: GuestAddress
    /// The modules, in the order given.
    public var modules: [Module]
}

/// A Multiboot (version 1) OS image, validated and ready to load: its header
/// and the segments to place, from its ELF32 program headers or, when header
/// flags bit 16 is set, from the header's address fields (the "a.out kludge",
/// which takes precedence over any executable format).
///
/// Two steps as for Linux: parsing checks the image alone; `load` checks every
/// range against the memory map and guest RAM before writing anything, then
/// writes the segments (zero-filling `.bss`), the modules and the information
/// structure. The machine enters at `entry` in 32-bit protected mode with
/// EAX = 0x2BADB002, EBX = the information structure, paging off, flat 4 GiB
/// segments and interrupts off (Multiboot Specification 0.6.96, section 3.2).
public struct MultibootKernel: Sendable {
    /// One piece of the image to place in memory.
    public struct Segment: Hashable, Sendable {
        /// Where its bytes start in the file.
        public var fileOffset: UInt64
        /// How many bytes come from the file; the rest of `memorySize` is zero-filled.
        public var fileSize: UInt64
        public var memorySize: UInt64
        /// The physical address it goes to.
        public var address: UInt64
    }

    /// How the segments were found.
    public enum Format: Hashable, Sendable {
        /// From the header's address fields (flags bit 16).
        case addressFields
        /// From the ELF32 program headers (`PT_LOAD`, at `p_paddr`).
        case elf32
    }

    public let header: MultibootHeader
    public let format: Format
    /// The segments with a non-zero memory size.
    public let segments: [Segment]
    /// The physical entry point.
    public let entry: UInt32
    private let image: [UInt8]

    /// Whether `image` has a Multiboot header magic in its first 8 KiB, which
    /// is how `swiftvmm run --kernel` tells a Multiboot kernel from a PVH
    /// `vmlinux` (a bzImage is recognised first, by its own header).
    public static func isMultiboot(_ image: [UInt8]) -> Bool { MultibootHeader.find(in: image) != nil }

    /// Parses the header and the image's load information and validates both.
    public init(parsing image: [UInt8]) throws(BootError) {
        guard !image.isEmpty else { throw .emptyImage }
        header = try MultibootHeader(parsing: image)
        if let fields = header.addressFields {
            format = .addressFields
            (segments, entry) = try Self.segments(from: fields, headerOffset: header.offset, fileSize: UInt64(image.count))
        } else {
            guard ELF64Image.hasMagic(image) else {
                throw .invalidField(
                    field: "Multiboot header flags", found: UInt64(header.flags),
                    expected: "bit 16 (the address fields) set: the image is not ELF, so only they can say where it goes")
            }
            format = .elf32
            (segments, entry) = try Self.elf32Segments(image)
        }
        self.image = image
    }

    /// The a.out kludge (spec 3.1.3): the file from `header offset - (header_addr - load_addr)`
    /// goes to `load_addr`, up to `load_end_addr` (0: the end of the file), then zeros up to `bss_end_addr` (0: none).
    static func segments(from fields: MultibootHeader.AddressFields, headerOffset: Int, fileSize: UInt64) throws(BootError) -> (
        [Segment], UInt32
    ) {
        let load = UInt64(fields.loadAddress)
        let headerAddress = UInt64(fields.headerAddress)
        guard load <= headerAddress else {
            throw .invalidField(field: "Multiboot header_addr", found: headerAddress, expected: "at least load_addr (\(hex(load)))")
        }
        guard headerAddress - load <= UInt64(headerOffset) else {
            throw .invalidField(
                field: "Multiboot load_addr", found: load,
                expected:
                    "at most \(headerOffset) bytes below header_addr (\(hex(headerAddress))), the header's file offset, so that loading starts inside the file"
            )
        }
        let fileOffset = UInt64(headerOffset) - (headerAddress - load)
        let loadSize: UInt64
        if fields.loadEndAddress == 0 {
            loadSize = fileSize - fileOffset
        } else {
            let loadEnd = UInt64(fields.loadEndAddress)
            guard loadEnd > load else {
                throw .invalidField(
                    field: "Multiboot load_end_addr", found: loadEnd, expected: "0 or above load_addr (\(hex(load)))")
            }
            loadSize = loadEnd - load
            guard fileOffset + loadSize <= fileSize else {
                throw .truncated(
                    what: "the Multiboot image's text and data (load_addr to load_end_addr from file offset \(fileOffset))",
                    needed: fileOffset + loadSize, available: fileSize)
            }
        }
        guard load + loadSize <= 1 << 32 else {
            throw .invalidField(
                field: "Multiboot load_addr + the image's size", found: load + loadSize, expected: "at most 4 GiB (0x100000000)")
        }
        var memorySize = loadSize
        if fields.bssEndAddress != 0 {
            let bssEnd = UInt64(fields.bssEndAddress)
            guard bssEnd >= load + loadSize else {
                throw .invalidField(
                    field: "Multiboot bss_end_addr", found: bssEnd,
                    expected: "0 or at least the end of the loaded data (\(hex(load + loadSize)))")
            }
            memorySize = bssEnd - load
        }
        guard memorySize > 0 else { throw .emptyImage }
        let entry = UInt64(fields.entryAddress)
        guard entry >= load, entry - load < memorySize else { throw .entryOutsideImage(entry: entry) }
        return ([Segment(fileOffset: fileOffset, fileSize: loadSize, memorySize: memorySize, address: load)], fields.entryAddress)
    }

    /// The `PT_LOAD` segments of an ELF32 i386 executable, at their physical
    /// addresses, and the entry point translated from virtual to physical
    /// through the segment that contains it (kernels linked to run higher-half
    /// give `e_entry` as a virtual address; GRUB translates it the same way).
    static func elf32Segments(_ bytes: [UInt8]) throws(BootError) -> ([Segment], UInt32) {
        let reader = ByteReader(bytes: bytes)
        let fileSize = UInt64(bytes.count)
        guard bytes.count >= 52 else { throw .truncated(what: "the ELF32 header", needed: 52, available: fileSize) }
        guard bytes[4] == 1 else {
            throw .invalidField(
                field: "ELF class (e_ident[EI_CLASS])", found: UInt64(bytes[4]),
                expected:
                    "1 (ELFCLASS32): a Multiboot kernel without the address fields (header flags bit 16) must be a 32-bit ELF, as QEMU also requires"
            )
        }
        guard bytes[5] == 1 else {
            throw .invalidField(field: "ELF data encoding (e_ident[EI_DATA])", found: UInt64(bytes[5]), expected: "1 (little-endian)")
        }
        let type = reader.u16(16)
        guard type == 2 else { throw .invalidField(field: "ELF e_type", found: type, expected: "2 (ET_EXEC)") }
        let machine = reader.u16(18)
        guard machine == 3 else { throw .invalidField(field: "ELF e_machine", found: machine, expected: "3 (EM_386)") }
        let virtualEntry = reader.u32(24)
        let phoff = reader.u32(28)
        let phentsize = reader.u16(42)
        let phnum = reader.u16(44)
        guard phentsize >= 32 else { throw .invalidField(field: "ELF e_phentsize", found: phentsize, expected: "at least 32") }
        guard phnum > 0 else { throw .invalidField(field: "ELF e_phnum", found: 0, expected: "at least one program header") }
        // 32-bit offsets and 16-bit counts: these sums cannot overflow 64 bits.
        let tableEnd = phoff + phentsize * phnum
        guard tableEnd <= fileSize else { throw .truncated(what: "the ELF program header table", needed: tableEnd, available: fileSize) }
        var segments: [Segment] = []
        var entry: UInt64?
        for i in 0..<phnum {
            let header = phoff + i * phentsize
            guard reader.u32(header) == 1 else { continue }  // PT_LOAD
            let segment = Segment(
                fileOffset: reader.u32(header + 4), fileSize: reader.u32(header + 16), memorySize: reader.u32(header + 20),
                address: reader.u32(header + 12))
            let virtualAddress = reader.u32(header + 8)
            guard segment.fileSize <= segment.memorySize else {
                throw .invalidField(
                    field: "ELF program header \(i) p_filesz", found: segment.fileSize, expected: "at most p_memsz (\(segment.memorySize))")
            }
            guard segment.fileOffset + segment.fileSize <= fileSize else {
                throw .truncated(what: "ELF segment \(i)", needed: segment.fileOffset + segment.fileSize, available: fileSize)
            }
            guard segment.address + segment.memorySize <= 1 << 32 else {
                throw .invalidField(
                    field: "ELF program header \(i) p_paddr + p_memsz", found: segment.address + segment.memorySize,
                    expected: "at most 4 GiB (0x100000000): a Multiboot kernel runs with paging off")
            }
            guard segment.memorySize > 0 else { continue }
            if entry == nil, virtualEntry >= virtualAddress, virtualEntry - virtualAddress < segment.memorySize {
                entry = virtualEntry - virtualAddress + segment.address
            }
            segments.append(segment)
        }
        guard !segments.isEmpty else {
            throw .invalidField(field: "ELF program headers", found: 0, expected: "at least one PT_LOAD segment")
        }
        // Some kernels give a physical e_entry with virtual segment addresses.
        if entry == nil, segments.contains(where: { virtualEntry >= $0.address && virtualEntry - $0.address < $0.memorySize }) {
            entry = virtualEntry
        }
        guard let entry else { throw .entryOutsideImage(entry: virtualEntry) }
        return (segments, UInt32(entry))
    }

    /// The lowest and one past the highest address the kernel occupies.
    public var kernelRange: Range<UInt64> {
        let start = segments.map(\.address).min() ?? 0
        let end = segments.map { $0.address + $0.memorySize }.max() ?? 0
        return start..<end
    }

    /// Places the kernel, its modules and the information structure, checking
    /// everything first: the kernel's segments must lie in usable RAM of
    /// `memoryMap`; the GDT, the stack, the modules (page-aligned, after the
    /// kernel when there is room) and the information block go into usable RAM
    /// below 4 GiB the kernel leaves free (`BootMemoryPlanner`). Nothing is
    /// written unless all of it fits.
    ///
    /// The kernel's command line is `commandLine` as given (swiftvmm passes
    /// the image's file name, a space and the user's text, as GRUB and QEMU do);
    /// it and the modules' lines may hold any byte but NUL.
    public func load(
        commandLine: String, modules: [MultibootModule] = [], memoryMap: E820Map, into memory: borrowing GuestMemory
    ) throws(BootError) -> MultibootBootPlan {
        let commandLineBytes = try Self.checkedString(commandLine)
        for (i, segment) in segments.enumerated() {
            let what = format == .elf32 ? "ELF segment \(i)" : "the Multiboot image (load_addr to bss_end_addr)"
            guard memoryMap.containsRAM(address: segment.address, size: segment.memorySize) else {
                throw .notUsableRAM(what: what, address: segment.address, size: segment.memorySize)
            }
            guard memory.contains(GuestAddress(segment.address), length: segment.memorySize) else {
                throw .imageOutsideRAM(what: what, address: segment.address, size: segment.memorySize, ramSize: memory.size)
            }
        }

        // The GDT, the stack, the modules and the information go into usable
        // RAM below 4 GiB that the kernel does not occupy: at their usual
        // addresses when free, otherwise below, between or after its segments.
        let usable = memoryMap.entries.filter { $0.type == .ram }.map { $0.address..<min($0.end, 1 << 32) }
        var planner = BootMemoryPlanner(
            available: usable.filter { !$0.isEmpty && memory.contains(GuestAddress($0.lowerBound), length: UInt64($0.count)) },
            occupied: segments.map { $0.address..<$0.address + $0.memorySize })
        let structures = try BootStructures.place(
            mode: .protected, planner: &planner, stackBelow: MultibootLayout.stackTop.rawValue, stackSize: MultibootLayout.stackSize)

        var placed: [MultibootInfo.Module] = []
        var cursor = max(kernelRange.upperBound, MultibootLayout.areaEnd)
        for (i, module) in modules.enumerated() {
            let size = UInt64(module.bytes.count)
            guard
                let address = planner.claim(size: size, alignment: MultibootLayout.moduleAlignment, lowest: cursor, limit: 1 << 32),
                memory.contains(GuestAddress(address), length: size)
            else { throw .moduleDoesNotFit(index: i, size: size, lowest: cursor) }
            placed.append(
                MultibootInfo.Module(address: UInt32(address), size: UInt32(size), commandLine: try Self.checkedString(module.commandLine)))
            cursor = address + size
        }

        let unplaced = MultibootInfo(commandLine: commandLineBytes, modules: placed, memoryMap: memoryMap)
        let infoSize = UInt64(unplaced.encoded(at: MultibootLayout.info).count)
        guard
            let infoAddress = planner.claim(
                size: infoSize, alignment: MultibootLayout.infoAlignment, preferred: MultibootLayout.info.rawValue,
                lowest: kernelRange.upperBound, limit: 1 << 32)
        else { throw .noRoomForBootStructures(what: "the Multiboot information", size: infoSize) }
        let infoStart = GuestAddress(infoAddress)
        let info = unplaced.encoded(at: infoStart)

        do {
            for segment in segments {
                let start = Int(segment.fileOffset)
                try memory.write(image[start..<start + Int(segment.fileSize)], at: GuestAddress(segment.address))
                try memory.fill(0, count: segment.memorySize - segment.fileSize, at: GuestAddress(segment.address + segment.fileSize))
            }
            for (module, place) in zip(modules, placed) { try memory.write(module.bytes, at: GuestAddress(UInt64(place.address))) }
            try memory.write(info, at: infoStart)
        } catch {
            throw .memory(error)
        }
        return MultibootBootPlan(
            entry: GuestAddress(UInt64(entry)), info: infoStart, infoSize: UInt64(info.count),
            gdt: GuestAddress(structures.gdt), stackTop: GuestAddress(structures.stackTop),
            kernelStart: GuestAddress(kernelRange.lowerBound), kernelEnd: GuestAddress(kernelRange.upperBound),
            modules: placed.map { MultibootBootPlan.Module(address: GuestAddress(UInt64($0.address)), size: UInt64($0.size)) })
    }

    /// A command line's bytes; a NUL would end it early in the guest, so it is refused.
    static func checkedString(_ text: String) throws(BootError) -> [UInt8] {
        let bytes = Array(text.utf8)
        if let offset = bytes.firstIndex(of: 0) {
            throw .invalidField(field: "Multiboot command line byte \(offset)", found: 0, expected: "any byte but NUL")
        }
        return bytes
    }
}

extension E820Map {
    /// The lowest `alignment`-aligned address at or above `lowest` where `size`
    /// bytes fit inside one RAM entry, ending at or below `limit`; `nil` if there
    /// is none. `alignment` must be a power of two.
    public func lowestRAMPlacement(size: UInt64, alignment: UInt64, lowest: UInt64, limit: UInt64) -> UInt64? {
        for entry in entries where entry.type == .ram {
            let (raised, overflow) = max(entry.address, lowest).addingReportingOverflow(alignment - 1)
            guard !overflow else { return nil }
            let start = raised & ~(alignment - 1)
            let (end, endOverflow) = start.addingReportingOverflow(size)
            if !endOverflow, end <= min(entry.end, limit), start >= entry.address { return start }
        }
        return nil
    }
}
