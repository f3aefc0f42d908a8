import VMCore

/// Where swiftvmm puts what a Multiboot kernel is handed, in guest-physical memory.
///
/// Each structure has a usual address and goes there when the kernel leaves it
/// free; otherwise it goes to the lowest free usable RAM (the information after
/// the kernel when there is room there, as QEMU places it), see `BootMemoryPlanner`:
///
/// ```
/// 0x0000_0500 - 0x0000_0520   the GDT (flat 32-bit code 0x08, data 0x10)
/// 0x0000_7000 - 0x0000_9000   the boot stack (ESP = 0x9000 at entry; the spec leaves ESP undefined)
/// 0x0000_9000 - ...           the Multiboot information structure (at 0x9000, where QEMU
///                             puts it too), then the memory map, the module list, the
///                             boot loader name and every command line
/// 0x0009_fc00 - 0x0010_0000   reserved in the memory map: EBDA, VGA hole, BIOS ROM
/// kernel                      where its ELF32 program headers or address fields say
/// kernel end (page-aligned)   the modules, each on a 4 KiB page boundary, in RAM below
///                             4 GiB, from 0x20000 or the kernel's end if higher
/// ```
///
/// The kernel may go anywhere in usable RAM.
public enum MultibootLayout {
    /// The lowest address the loader itself usually writes: the GDT.
    public static let reservedStart: UInt64 = X86Layout.gdt.rawValue
    /// ESP at entry: the top of the two pages below the information structure.
    public static let stackTop = GuestAddress(0x9000)
    /// The size of the boot stack.
    public static let stackSize: UInt64 = 0x2000
    /// The Multiboot information structure's usual place; EBX holds its address at entry.
    public static let info = GuestAddress(0x9000)
    /// The information block's alignment when it has to go elsewhere.
    public static let infoAlignment: UInt64 = 0x1000
    /// Modules go at or above this address (and the kernel's end) when there is room.
    public static let areaEnd: UInt64 = 0x2_0000
    /// Modules start on page boundaries whether or not the kernel asks (flags bit 0): QEMU and GRUB do the same.
    public static let moduleAlignment: UInt64 = 0x1000
    /// `boot_loader_name`.
    public static let bootLoaderName = "swiftvmm"
}

/// The Multiboot information structure a kernel finds at EBX, with everything it points to.
///
/// Layout from the Multiboot Specification 0.6.96, section 3.3 (88 bytes):
///
/// ```
///  0 u32 flags              which fields below are valid (bits below)
///  4 u32 mem_lower          KiB of RAM from 0 (at most 640)           flags[0]
///  8 u32 mem_upper          KiB of RAM from 1 MiB to the first hole   flags[0]
/// 12 u32 boot_device                                                  flags[1] (not given)
/// 16 u32 cmdline            NUL-terminated                            flags[2]
/// 20 u32 mods_count                                                   flags[3]
/// 24 u32 mods_addr          -> { u32 mod_start, mod_end, string, reserved }[mods_count]
/// 28 u32 syms[4]            a.out symbols or ELF section headers      flags[4]/[5] (not given)
/// 44 u32 mmap_length        bytes of the memory map                   flags[6]
/// 48 u32 mmap_addr          -> { u32 size = 20, u64 base_addr, u64 length, u32 type }...
/// 52 u32 drives_length, 56 drives_addr, 60 config_table              flags[7]/[8] (not given)
/// 64 u32 boot_loader_name   NUL-terminated                            flags[9]
/// 68 u32 apm_table, 72-86 the VBE fields                              flags[10]/[11] (not given)
/// ```
///
/// Memory-map types are the E820 types (1 available RAM, 3 ACPI, others reserved).
/// Everything is little-endian and below 4 GiB.
public struct MultibootInfo: Hashable, Sendable {
    /// EAX at entry: tells the kernel a Multiboot-compliant loader started it.
    public static let bootloaderMagic: UInt32 = 0x2bad_b002
    /// The size of the information structure (version 0.6.96).
    public static let size = 88
    /// One memory-map entry, its own `size` field included.
    public static let memoryMapEntrySize = 24
    /// One module-list entry.
    public static let moduleEntrySize = 16

    /// `flags` bits of the information structure.
    public static let flagMemory: UInt32 = 1 << 0
    public static let flagCommandLine: UInt32 = 1 << 2
    public static let flagModules: UInt32 = 1 << 3
    public static let flagMemoryMap: UInt32 = 1 << 6
    public static let flagBootLoaderName: UInt32 = 1 << 9

    /// A boot module: where it is and its command line (without a NUL).
    public struct Module: Hashable, Sendable {
        public var address: UInt32
        public var size: UInt32
        public var commandLine: [UInt8]

        public init(address: UInt32, size: UInt32, commandLine: [UInt8]) {
            self.address = address
            self.size = size
            self.commandLine = commandLine
        }
    }

    /// The kernel command line, without a NUL.
    public var commandLine: [UInt8]
    public var modules: [Module]
    public var memoryMap: E820Map
    public var bootLoaderName: [UInt8]

    public init(commandLine: [UInt8], modules: [Module], memoryMap: E820Map, bootLoaderName: String = MultibootLayout.bootLoaderName) {
        self.commandLine = commandLine
        self.modules = modules
        self.memoryMap = memoryMap
        self.bootLoaderName = Array(bootLoaderName.utf8)
    }

    /// `mem_lower`: KiB of RAM starting at address 0, at most 640 (the PC's conventional memory).
    public var memoryLowerKiB: UInt32 {
        guard let low = memoryMap.entries.first(where: { $0.type == .ram && $0.address == 0 }) else { return 0 }
        return UInt32(min(low.size, 640 << 10) >> 10)
    }

    /// `mem_upper`: KiB of RAM from 1 MiB up to the first hole above it.
    public var memoryUpperKiB: UInt32 {
        let megabyte = LinuxLayout.highMemoryStart
        guard
            let high = memoryMap.entries.first(where: { $0.type == .ram && $0.address <= megabyte && megabyte < $0.end })
        else { return 0 }
        return UInt32(min((high.end - megabyte) >> 10, UInt64(UInt32.max)))
    }

    /// The `flags` this structure sets.
    public var flags: UInt32 { Self.flagMemory | Self.flagCommandLine | Self.flagModules | Self.flagMemoryMap | Self.flagBootLoaderName }

    /// The information structure followed by the memory map, the module list,
    /// the boot loader name and the command lines, as one block to be written
    /// at `base`; every pointer inside is `base` plus an offset. `base` plus
    /// the block's length must stay below 4 GiB (the fields are 32-bit).
    public func encoded(at base: GuestAddress) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.size)
        let address = { (offset: Int) in UInt32(truncatingIfNeeded: base.rawValue &+ UInt64(offset)) }

        let mmapOffset = bytes.count
        for entry in memoryMap.entries {
            bytes += littleEndianBytes(UInt32(E820Entry.encodedSize), 4) + entry.encoded
        }
        let mmapLength = bytes.count - mmapOffset

        let modulesOffset = bytes.count
        bytes += [UInt8](repeating: 0, count: modules.count * Self.moduleEntrySize)
        func appendString(_ string: [UInt8]) -> UInt32 {
            let offset = bytes.count
            bytes += string + [0]
            return address(offset)
        }
        let nameAddress = appendString(bootLoaderName)
        let commandLineAddress = appendString(commandLine)
        for (i, module) in modules.enumerated() {
            let entry = modulesOffset + i * Self.moduleEntrySize
            bytes.store(module.address, at: entry)
            bytes.store(module.address &+ module.size, at: entry + 4)
            bytes.store(appendString(module.commandLine), at: entry + 8)
        }

        bytes.store(flags, at: 0)
        bytes.store(memoryLowerKiB, at: 4)
        bytes.store(memoryUpperKiB, at: 8)
        bytes.store(commandLineAddress, at: 16)
        bytes.store(UInt32(modules.count), at: 20)
        bytes.store(address(modulesOffset), at: 24)
        bytes.store(UInt32(mmapLength), at: 44)
        bytes.store(address(mmapOffset), at: 48)
        bytes.store(nameAddress, at: 64)
        return bytes
    }
}
