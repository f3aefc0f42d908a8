import GuestMemory
import VMCore

/// `struct hvm_start_info`, what a PVH kernel finds at EBX: the command line,
/// the modules (the initrd), the ACPI RSDP and the memory map.
///
/// Layout from Xen's public/arch-x86/hvm/start_info.h, version 1:
///
/// ```
/// 0x00 u32 magic            0x336ec578
/// 0x04 u32 version          1
/// 0x08 u32 flags
/// 0x0c u32 nr_modules
/// 0x10 u64 modlist_paddr    -> hvm_modlist_entry[nr_modules]  (paddr, size, cmdline_paddr, reserved: 4 x u64)
/// 0x18 u64 cmdline_paddr    NUL-terminated, 0 if none
/// 0x20 u64 rsdp_paddr       0 if none
/// 0x28 u64 memmap_paddr     -> hvm_memmap_table_entry[memmap_entries]  (addr u64, size u64, type u32, reserved u32)
/// 0x30 u32 memmap_entries
/// 0x34 u32 reserved         0
/// ```
///
/// The memory-map types are the E820 types.
public struct HVMStartInfo: Hashable, Sendable {
    /// `XEN_HVM_START_MAGIC_VALUE`.
    public static let magic: UInt32 = 0x336e_c578
    /// Version 1 adds the memory map to version 0.
    public static let version: UInt32 = 1
    /// The size of `struct hvm_start_info` version 1.
    public static let size = 0x38
    /// The size of `struct hvm_modlist_entry`.
    public static let moduleEntrySize = 32
    /// The size of `struct hvm_memmap_table_entry`.
    public static let memoryMapEntrySize = 24

    /// One `hvm_modlist_entry`.
    public struct Module: Hashable, Sendable {
        public var address: GuestAddress
        public var size: UInt64
        /// The module's own command line, if any.
        public var commandLine: GuestAddress?

        public init(address: GuestAddress, size: UInt64, commandLine: GuestAddress? = nil) {
            self.address = address
            self.size = size
            self.commandLine = commandLine
        }
    }

    /// `SIF_*` flags; 0 for an unprivileged guest.
    public var flags: UInt32
    /// The modules; Linux takes the first as its initrd.
    public var modules: [Module]
    /// The NUL-terminated kernel command line.
    public var commandLine: GuestAddress?
    /// The ACPI RSDP.
    public var rsdp: GuestAddress?
    /// The memory map, written as `hvm_memmap_table_entry` records.
    public var memoryMap: E820Map

    public init(flags: UInt32 = 0, modules: [Module] = [], commandLine: GuestAddress?, rsdp: GuestAddress? = nil, memoryMap: E820Map) {
        self.flags = flags
        self.modules = modules
        self.commandLine = commandLine
        self.rsdp = rsdp
        self.memoryMap = memoryMap
    }

    /// The 56-byte structure, pointing at a module list and memory map stored
    /// at the given addresses. `modlist_paddr` is 0 when there are no modules.
    public func encoded(moduleList: GuestAddress, memoryMapTable: GuestAddress) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.size)
        bytes.store(Self.magic, at: 0x00)
        bytes.store(Self.version, at: 0x04)
        bytes.store(flags, at: 0x08)
        bytes.store(UInt32(modules.count), at: 0x0c)
        bytes.store(modules.isEmpty ? 0 : moduleList.rawValue, at: 0x10)
        bytes.store(commandLine?.rawValue ?? 0, at: 0x18)
        bytes.store(rsdp?.rawValue ?? 0, at: 0x20)
        bytes.store(memoryMapTable.rawValue, at: 0x28)
        bytes.store(UInt32(memoryMap.entries.count), at: 0x30)
        return bytes
    }

    /// The `hvm_modlist_entry` array.
    public var encodedModules: [UInt8] {
        modules.flatMap { module in
            littleEndianBytes(module.address.rawValue, 8) + littleEndianBytes(module.size, 8)
                + littleEndianBytes(module.commandLine?.rawValue ?? 0, 8) + littleEndianBytes(0, 8)
        }
    }

    /// The `hvm_memmap_table_entry` array.
    public var encodedMemoryMap: [UInt8] {
        memoryMap.entries.flatMap { entry in
            littleEndianBytes(entry.address, 8) + littleEndianBytes(entry.size, 8) + littleEndianBytes(entry.type.rawValue, 4)
                + littleEndianBytes(0, 4)
        }
    }

    /// Writes the structure, its module list and its memory map at `LinuxLayout`'s
    /// PVH addresses (or the given ones). Nothing is written unless all three fit.
    public func write(
        at address: GuestAddress = LinuxLayout.pvhStartInfo, moduleList: GuestAddress = LinuxLayout.pvhModuleList,
        memoryMapTable: GuestAddress = LinuxLayout.pvhMemoryMap, into memory: borrowing GuestMemory
    ) throws(BootError) {
        guard modules.count <= LinuxLayout.pvhMaximumModules else {
            throw .invalidField(
                field: "hvm_start_info nr_modules", found: UInt64(modules.count), expected: "at most \(LinuxLayout.pvhMaximumModules)")
        }
        let parts: [(String, GuestAddress, [UInt8])] = [
            ("the PVH start info", address, encoded(moduleList: moduleList, memoryMapTable: memoryMapTable)),
            ("the PVH module list", moduleList, encodedModules),
            ("the PVH memory map", memoryMapTable, encodedMemoryMap),
        ]
        for (what, at, bytes) in parts where !memory.contains(at, length: UInt64(bytes.count)) {
            throw .imageOutsideRAM(what: what, address: at.rawValue, size: UInt64(bytes.count), ramSize: memory.size)
        }
        do {
            for (_, at, bytes) in parts { try memory.write(bytes, at: at) }
        } catch {
            throw .memory(error)
        }
    }
}
