import VMCore

/// Where swiftvmm puts a Linux kernel and what it hands the kernel, in
/// guest-physical memory.
///
/// The small structures sit in low memory just above `X86Layout`'s GDT and
/// page tables ([0x500, 0x7000)), clear of the EBDA and BIOS area
/// ([0x9fc00, 0x100000)) that the E820 map reports as reserved; the kernel
/// itself goes at 1 MiB and the initrd as high in RAM as the kernel allows.
/// The addresses follow Firecracker's `arch/src/x86_64/layout.rs`, which boots
/// the same kernels.
///
/// ```
/// 0x0000_0500 - 0x0000_7000   X86Layout: GDT, page tables (long mode)
/// 0x0000_7000 - 0x0000_8000   zero page (struct boot_params)
/// 0x0000_8000 - 0x0000_9000   boot stack (RSP = 0x8ff0)
/// 0x0000_9000 - 0x0000_9038   PVH: struct hvm_start_info
/// 0x0000_9800 - 0x0000_a000   PVH: hvm_modlist_entry array (64 entries)
/// 0x0000_a000 - 0x0000_ac00   PVH: hvm_memmap_table_entry array (128 entries)
/// 0x0002_0000 - 0x0003_0000   kernel command line (NUL-terminated)
/// 0x0009_fc00 - 0x0010_0000   reserved in E820: EBDA, VGA hole, BIOS ROM
/// 0x0010_0000 - ...           bzImage: protected-mode kernel (64-bit entry at +0x200)
/// 0x0100_0000 - ...           bzImage: where a relocatable kernel decompresses
///                             to (pref_address), init_size bytes; vmlinux (PVH) loads
///                             here by its program headers
/// ... top of RAM below 4 GiB  initrd, page-aligned, as high as allowed
/// ```
public enum LinuxLayout {
    /// `struct boot_params`, the "zero page" the 64-bit entry receives in RSI.
    /// One page right after `X86Layout.structuresEnd`; Firecracker's `ZERO_PAGE_START`.
    public static let zeroPage = GuestAddress(0x7000)
    /// The size of `struct boot_params` (boot.rst: "limited to 4096 bytes").
    public static let zeroPageSize: UInt64 = 0x1000
    /// The initial stack pointer for Linux entry: the top of the page after the
    /// zero page, 16-byte aligned. The kernel switches to its own stack in its
    /// first instructions, so this page only has to exist; Firecracker's `BOOT_STACK_POINTER`.
    public static let bootStackTop = GuestAddress(0x8ff0)
    /// PVH `struct hvm_start_info` (56 bytes); its address goes in EBX at entry.
    public static let pvhStartInfo = GuestAddress(0x9000)
    /// PVH module list: `hvm_modlist_entry` array (32 bytes each), the initrd first.
    public static let pvhModuleList = GuestAddress(0x9800)
    /// How many `hvm_modlist_entry` fit before `pvhMemoryMap`.
    public static let pvhMaximumModules = 64
    /// PVH memory map: `hvm_memmap_table_entry` array (24 bytes each), up to
    /// `E820Map.maximumEntries` of them, ending at 0xac00.
    public static let pvhMemoryMap = GuestAddress(0xa000)
    /// The kernel command line, NUL-terminated. Below the EBDA and above the
    /// real-mode structures, as boot.rst asks for ("anywhere between the end of
    /// the setup heap and 0xA0000"); Firecracker's `CMDLINE_START`.
    public static let commandLine = GuestAddress(0x2_0000)
    /// The bytes reserved for the command line, NUL included. The kernel's own
    /// `cmdline_size` (2047 for x86's COMMAND_LINE_SIZE) is the tighter limit.
    public static let commandLineRegionSize: UInt64 = 0x1_0000
    /// Where the EBDA starts: RAM below it is usable, [0x9fc00, 1 MiB) is reserved
    /// as on a PC (EBDA, VGA window 0xa0000, option and BIOS ROMs).
    public static let lowRAMEnd: UInt64 = 0x9_fc00
    /// The start of "high" memory: where the reserved low-memory hole ends.
    public static let highMemoryStart: UInt64 = 0x10_0000
    /// Where the protected-mode part of a bzImage loads: 1 MiB, the address
    /// boot.rst gives for bzImage kernels and the default `code32_start`.
    public static let kernelLoadAddress = GuestAddress(0x10_0000)
    /// The 64-bit entry point is this far into the protected-mode kernel (boot.rst, "64-bit Boot Protocol").
    public static let entry64Offset: UInt64 = 0x200
    /// The initrd starts on a page boundary.
    public static let initrdAlignment: UInt64 = 0x1000
    /// The initrd stays below 4 GiB: `initrd_addr_max` is a 32-bit field and
    /// the PVH module list is read by 32-bit code.
    public static let initrdCeiling: UInt64 = 1 << 32
}
