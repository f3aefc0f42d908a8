import VMCore

/// Where the VMM puts its own structures in guest-physical memory.
///
/// Everything lives in the first 32 KiB, below the traditional boot-sector
/// address 0x7c00 and far below the 1 MiB where protected- and long-mode
/// guests load, so guests built for a PC's memory map never collide with it.
public enum X86Layout {
    /// The real-mode interrupt vector table and BIOS data area end here; we
    /// leave them untouched for real-mode guests that use them as scratch.
    public static let biosDataAreaEnd: UInt64 = 0x500
    /// The GDT swiftvmm builds for protected- and long-mode entry.
    public static let gdt = GuestAddress(0x500)
    /// The long-mode page-map level 4 table.
    public static let pml4 = GuestAddress(0x1000)
    /// The page-directory-pointer table: entries 0-3 point at `pageDirectories`,
    /// entries 4 and up (RAM above 4 GiB) map 1 GiB pages directly.
    public static let pdpt = GuestAddress(0x2000)
    /// Four page directories of 2 MiB pages that identity-map the first 4 GiB,
    /// RAM and the MMIO hole alike.
    public static let pageDirectories = GuestAddress(0x3000)
    /// The end of the structures above: [biosDataAreaEnd, structuresEnd) belongs to the VMM
    /// in protected and long mode.
    public static let structuresEnd: UInt64 = 0x7000
    /// The lowest load address for protected- and long-mode images: it leaves at
    /// least 4 KiB of stack between the VMM's structures and the image.
    public static let minimumProtectedLoadAddress: UInt64 = 0x8000
    /// Where flat real-mode images load by default: the boot-sector address.
    public static let defaultRealModeLoadAddress: UInt64 = 0x7c00
    /// Where flat protected- and long-mode images load by default: 1 MiB.
    public static let defaultLoadAddress: UInt64 = 0x10_0000
}

/// The GDT selectors swiftvmm's entry state uses.
public enum GDTSelector {
    /// Flat 4 GiB 32-bit code, ring 0.
    public static let code32: UInt16 = 0x08
    /// Flat 4 GiB data, ring 0.
    public static let data: UInt16 = 0x10
    /// 64-bit code, ring 0.
    public static let code64: UInt16 = 0x18
}
