import VMCore

/// `struct boot_params`, the "zero page" a 64-bit Linux kernel receives in RSI.
///
/// Built as boot.rst's "64-bit Boot Protocol" asks: a page of zeros, the
/// setup header copied from the image to offset 0x1f1, then the fields a boot
/// loader writes. Offsets are from arch/x86/include/uapi/asm/bootparam.h and
/// Documentation/arch/x86/zero-page.rst.
public enum LinuxZeroPage {
    /// Byte offsets into `struct boot_params`.
    public enum Offset {
        public static let acpiRSDPAddr = 0x070
        public static let extRamdiskImage = 0x0c0
        public static let extRamdiskSize = 0x0c4
        public static let extCmdLinePtr = 0x0c8
        public static let e820Entries = 0x1e8
        /// The setup header, copied from the same offset of the image.
        public static let setupHeader = 0x1f1
        public static let e820Table = 0x2d0
    }

    /// `type_of_loader` 0xff: "undefined", the value for boot loaders without an assigned ID.
    public static let typeOfLoaderUndefined: UInt8 = 0xff
    /// `heap_end_ptr`: the end of the real-mode setup heap minus 0x200, as boot.rst's
    /// sample loader sets it for a protocol 2.02+ bzImage (heap end 0xe000). Only the
    /// real-mode setup code reads it; the 64-bit entry skips that code.
    public static let heapEndPointer: UInt16 = 0xe000 - 0x200

    /// The 4 KiB zero page for `header`'s kernel placed as `plan` says, with
    /// `memoryMap` as its E820 table and, if given, the ACPI RSDP address.
    public static func encode(
        header: LinuxSetupHeader, plan: LinuxBootPlan, memoryMap: E820Map, acpiRSDP: GuestAddress? = nil
    ) -> [UInt8] {
        typealias Header = LinuxSetupHeader.Offset
        var page = [UInt8](repeating: 0, count: Int(LinuxLayout.zeroPageSize))
        page.replaceSubrange(Offset.setupHeader..<Offset.setupHeader + header.rawBytes.count, with: header.rawBytes)

        page.store(typeOfLoaderUndefined, at: Header.typeOfLoader)
        page.store(header.loadflags | LinuxSetupHeader.canUseHeap, at: Header.loadflags)
        page.store(heapEndPointer, at: Header.heapEndPtr)

        let commandLine = plan.commandLine.rawValue
        page.store(UInt32(truncatingIfNeeded: commandLine), at: Header.cmdLinePtr)
        page.store(UInt32(truncatingIfNeeded: commandLine >> 32), at: Offset.extCmdLinePtr)

        if let initrd = plan.initrd {
            page.store(UInt32(truncatingIfNeeded: initrd.address.rawValue), at: Header.ramdiskImage)
            page.store(UInt32(truncatingIfNeeded: initrd.size), at: Header.ramdiskSize)
            page.store(UInt32(truncatingIfNeeded: initrd.address.rawValue >> 32), at: Offset.extRamdiskImage)
            page.store(UInt32(truncatingIfNeeded: initrd.size >> 32), at: Offset.extRamdiskSize)
        }

        // E820Map guarantees at most 128 entries, which is what the table holds.
        page.store(UInt8(memoryMap.entries.count), at: Offset.e820Entries)
        let table = memoryMap.encoded
        page.replaceSubrange(Offset.e820Table..<Offset.e820Table + table.count, with: table)

        if let acpiRSDP { page.store(acpiRSDP.rawValue, at: Offset.acpiRSDPAddr) }
        return page
    }
}

extension Array where Element == UInt8 {
    /// Stores `value` little-endian at `offset`, which the caller has checked is in range.
    mutating func store<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for i in 0..<MemoryLayout<T>.size {
            self[offset + i] = UInt8(truncatingIfNeeded: value >> (i * 8))
        }
    }
}
