import GuestMemory
import VMCore

/// Where a PVH kernel and what it is handed went, and where to enter it.
public struct PVHBootPlan: Hashable, Sendable {
    /// The 32-bit entry from the `XEN_ELFNOTE_PHYS32_ENTRY` note.
    public var entry32: GuestAddress
    /// `struct hvm_start_info`; EBX holds this at entry.
    public var startInfo: GuestAddress
    /// The lowest and one past the highest byte of the loaded segments.
    public var kernelStart: GuestAddress
    public var kernelEnd: GuestAddress
    /// The NUL-terminated command line and its length without the NUL.
    public var commandLine: GuestAddress
    public var commandLineLength: Int
    /// The initrd (module 0), if there is one.
    public var initrd: LinuxBootPlan.Blob?

    public init(
        entry32: GuestAddress, startInfo: GuestAddress, kernelStart: GuestAddress, kernelEnd: GuestAddress, commandLine: GuestAddress,
        commandLineLength: Int, initrd: LinuxBootPlan.Blob?
    ) {
        self.entry32 = entry32
        self.startInfo = startInfo
        self.kernelStart = kernelStart
        self.kernelEnd = kernelEnd
        self.commandLine = commandLine
        self.commandLineLength = commandLineLength
        self.initrd = initrd
    }
}

/// An uncompressed ELF64 kernel (`vmlinux`) that can be entered by PVH, the
/// Xen/KVM direct-boot ABI: loaded by its program headers at their physical
/// addresses and entered in 32-bit protected mode at the address in its
/// `XEN_ELFNOTE_PHYS32_ENTRY` note, with EBX = the `hvm_start_info` address.
///
/// Entry state (Xen's docs/misc/pvh.pandoc): CR0.PE set, paging off; CS a flat
/// 32-bit read/execute code segment, DS, ES, SS flat read/write data; TR a
/// 32-bit TSS; EFLAGS.IF clear. The kernel builds its own GDT, IDT and stack.
public struct PVHImage: Hashable, Sendable {
    /// The ELF note owner Xen's notes use.
    public static let xenNoteName: [UInt8] = Array("Xen".utf8) + [0]
    /// `XEN_ELFNOTE_PHYS32_ENTRY`.
    public static let phys32EntryNoteType: UInt64 = 18

    /// The validated ELF file.
    public let elf: ELF64Image
    /// The 32-bit physical entry point.
    public let entry32: UInt32

    /// Parses the ELF file and finds its PVH entry note.
    public init(parsing bytes: [UInt8]) throws(BootError) {
        elf = try ELF64Image(parsing: bytes)
        guard let entry = try Self.phys32Entry(in: bytes) else { throw .pvhEntryNoteMissing }
        guard entry <= UInt64(UInt32.max) else {
            throw .invalidField(field: "XEN_ELFNOTE_PHYS32_ENTRY", found: entry, expected: "a 32-bit physical address")
        }
        guard elf.segments.contains(where: { entry >= $0.physicalAddress && entry - $0.physicalAddress < $0.memorySize }) else {
            throw .entryOutsideImage(entry: entry)
        }
        entry32 = UInt32(entry)
    }

    /// The descriptor of the first `Xen` note of type 18 in any `PT_NOTE`
    /// segment (4 or 8 bytes, little-endian; Linux emits a `.quad`), or `nil`.
    /// Expects `bytes` to be an ELF file whose program header table `ELF64Image` has validated.
    static func phys32Entry(in bytes: [UInt8]) throws(BootError) -> UInt64? {
        let reader = ByteReader(bytes: bytes)
        let fileSize = UInt64(bytes.count)
        let phoff = reader.u64(32)
        let phentsize = reader.u16(54)
        for i in 0..<reader.u16(56) {
            let header = phoff + i * phentsize
            guard reader.u32(header) == 4 else { continue }  // PT_NOTE
            let offset = reader.u64(header + 8)
            let size = reader.u64(header + 32)
            // Notes are 4-byte aligned in ELF64 files as Linux and most toolchains write them; 8 if the segment says so.
            let alignment: UInt64 = reader.u64(header + 48) == 8 ? 8 : 4
            let (end, overflow) = offset.addingReportingOverflow(size)
            guard !overflow, end <= fileSize else {
                throw .truncated(what: "ELF note segment (program header \(i))", needed: overflow ? .max : end, available: fileSize)
            }
            var position = offset
            while end - position >= 12 {
                let nameSize = reader.u32(position)
                let descriptorSize = reader.u32(position + 4)
                let type = reader.u32(position + 8)
                let name = position + 12
                let descriptor = name + roundUp(nameSize, alignment)
                let next = descriptor + roundUp(descriptorSize, alignment)
                guard next <= end || descriptor + descriptorSize <= end else {
                    throw .truncated(
                        what: "ELF note at file offset \(hex(position)) (program header \(i))", needed: descriptor + descriptorSize,
                        available: end)
                }
                if type == phys32EntryNoteType, Array(bytes[Int(name)..<Int(name + nameSize)]) == xenNoteName {
                    switch descriptorSize {
                    case 4: return reader.u32(descriptor)
                    case 8: return reader.u64(descriptor)
                    default:
                        throw .invalidField(
                            field: "XEN_ELFNOTE_PHYS32_ENTRY descriptor size", found: descriptorSize, expected: "4 or 8 bytes")
                    }
                }
                position = min(next, end)
            }
        }
        return nil
    }

    /// Loads the kernel's segments, the command line and the initrd, and writes
    /// `hvm_start_info` with the module list and memory map at `LinuxLayout`'s
    /// PVH addresses. The initrd goes page-aligned as high as possible in RAM
    /// below 4 GiB and above the kernel. Nothing is written unless everything fits.
    public func load(
        commandLine: KernelCommandLine, initrd: [UInt8]? = nil, memoryMap: E820Map, acpiRSDP: GuestAddress? = nil,
        into memory: borrowing GuestMemory
    ) throws(BootError) -> PVHBootPlan {
        try commandLine.check(fitsIn: Int(LinuxLayout.commandLineRegionSize) - 1)
        let kernelStart = elf.segments.map(\.physicalAddress).min() ?? 0
        let kernelEnd = elf.segments.map { $0.physicalAddress + $0.memorySize }.max() ?? 0
        if !memoryMap.containsRAM(address: kernelStart, size: kernelEnd - kernelStart) {
            throw .notUsableRAM(what: "the kernel's segments", address: kernelStart, size: kernelEnd - kernelStart)
        }
        var blob: LinuxBootPlan.Blob?
        if let initrd {
            let size = UInt64(initrd.count)
            guard size > 0 else { throw .invalidField(field: "initrd size", found: 0, expected: "at least 1 byte") }
            let limit = LinuxLayout.initrdCeiling
            guard
                let address = memoryMap.highestRAMPlacement(
                    size: size, alignment: LinuxLayout.initrdAlignment, lowest: kernelEnd, limit: limit)
            else { throw .initrdDoesNotFit(size: size, lowest: kernelEnd, limit: limit) }
            blob = LinuxBootPlan.Blob(address: GuestAddress(address), size: size)
        }
        let startInfo = HVMStartInfo(
            modules: blob.map { [HVMStartInfo.Module(address: $0.address, size: $0.size)] } ?? [],
            commandLine: LinuxLayout.commandLine, rsdp: acpiRSDP, memoryMap: memoryMap)

        var ranges: [(String, GuestAddress, UInt64)] = [
            ("the kernel command line", LinuxLayout.commandLine, UInt64(commandLine.bytes.count + 1)),
            ("the PVH start info", LinuxLayout.pvhStartInfo, UInt64(HVMStartInfo.size)),
            ("the PVH module list", LinuxLayout.pvhModuleList, UInt64(startInfo.encodedModules.count)),
            ("the PVH memory map", LinuxLayout.pvhMemoryMap, UInt64(startInfo.encodedMemoryMap.count)),
        ]
        if let blob { ranges.append(("the initrd", blob.address, blob.size)) }
        for (what, address, size) in ranges where !memory.contains(address, length: size) {
            throw .imageOutsideRAM(what: what, address: address.rawValue, size: size, ramSize: memory.size)
        }
        // ELF64Image.load checks every segment before it writes any.
        _ = try elf.load(mode: .protected, into: memory)
        do {
            try memory.write(commandLine.nulTerminated, at: LinuxLayout.commandLine)
            if let initrd, let blob { try memory.write(initrd, at: blob.address) }
        } catch {
            throw .memory(error)
        }
        try startInfo.write(into: memory)
        return PVHBootPlan(
            entry32: GuestAddress(UInt64(entry32)), startInfo: LinuxLayout.pvhStartInfo, kernelStart: GuestAddress(kernelStart),
            kernelEnd: GuestAddress(kernelEnd), commandLine: LinuxLayout.commandLine, commandLineLength: commandLine.bytes.count,
            initrd: blob)
    }
}

/// `value` rounded up to a multiple of `alignment` (a power of two); inputs are 32-bit, so it cannot overflow.
private func roundUp(_ value: UInt64, _ alignment: UInt64) -> UInt64 {
    (value + alignment - 1) & ~(alignment - 1)
}
