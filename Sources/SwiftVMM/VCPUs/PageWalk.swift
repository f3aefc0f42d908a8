import VMCore

/// A walk of the guest's page tables for one linear address, as the CPU
/// makes it for a data access: every paging mode (32-bit, PAE, 4- and
/// 5-level), large pages, and the checks that decide a #PF (present, R/W
/// with CR0.WP, U/S, SMAP). `KVM_TRANSLATE` gives the address only (KVM
/// reports every page writable and supervisor), not enough to refuse a write
/// to a read-only (copy-on-write) page, hence this walk.
struct PageWalk {
    /// A page fault: the error code the CPU pushes (P, W/R, U/S bits).
    struct Fault: Error, Hashable, Sendable {
        var errorCode: UInt32
    }

    /// The control registers, EFER and RFLAGS.AC and CPL of the access.
    var cr0: UInt64
    var cr3: UInt64
    var cr4: UInt64
    var efer: UInt64
    var userMode: Bool
    var alignmentCheckFlag: Bool

    init(special: SpecialRegisters, rflags: UInt64) {
        cr0 = special.cr0
        cr3 = special.cr3
        cr4 = special.cr4
        efer = special.efer
        userMode = special.cs.dpl == 3
        alignmentCheckFlag = rflags & (1 << 18) != 0
    }

    /// The guest-physical address of linear `address` for a read or a write.
    /// `readEntry(physical, size)` reads a page-table entry (4 or 8 bytes;
    /// `nil` outside RAM, a fault); `writeEntry` stores one back with its
    /// accessed (and, for the leaf of a write, dirty) bit set, as the CPU does.
    func translate(
        _ address: UInt64, write: Bool, readEntry: (UInt64, Int) -> UInt64?, writeEntry: (UInt64, Int, UInt64) -> Void
    ) throws(Fault) -> UInt64 {
        guard cr0 & (1 << 31) != 0 else { return address & 0xffff_ffff }
        let writeBit: UInt32 = write ? 2 : 0
        let userBit: UInt32 = userMode ? 4 : 0
        let notPresent = Fault(errorCode: writeBit | userBit)
        let frameMask: UInt64 = 0x000f_ffff_ffff_f000
        var writable = true
        var user = true
        // Per level: the address bits that index it, its entry size, and whether a PS bit may end the walk there.
        var levels: [(shift: UInt64, size: Int, large: Bool)]
        var table: UInt64
        if efer & (1 << 10) != 0 {  // LMA: 4- or 5-level
            let la57 = cr4 & (1 << 12) != 0
            levels = (la57 ? [(48, 8, false)] : []) + [(39, 8, false), (30, 8, true), (21, 8, true), (12, 8, false)]
            table = cr3 & frameMask
        } else if cr4 & (1 << 5) != 0 {  // PAE: a 4-entry PDPT without R/W or U/S
            let pdpte = readEntry((cr3 & 0xffff_ffe0) + ((address >> 30) & 3) * 8, 8)
            guard let pdpte, pdpte & 1 != 0 else { throw notPresent }
            levels = [(21, 8, true), (12, 8, false)]
            table = pdpte & frameMask
        } else {  // 32-bit paging
            levels = [(22, 4, cr4 & (1 << 4) != 0), (12, 4, false)]
            table = cr3 & 0xffff_f000
        }
        for (n, level) in levels.enumerated() {
            let indexMask: UInt64 = level.size == 8 ? 0x1ff : 0x3ff
            let entryAddress = table + ((address >> level.shift) & indexMask) * UInt64(level.size)
            guard let entry = readEntry(entryAddress, level.size), entry & 1 != 0 else { throw notPresent }
            writable = writable && entry & 2 != 0
            user = user && entry & 4 != 0
            let leaf = n == levels.count - 1 || (level.large && entry & 0x80 != 0)
            var updated = entry | 0x20  // accessed
            if leaf {
                try check(writable: writable, user: user, write: write)
                if write { updated |= 0x40 }  // dirty
                if updated != entry { writeEntry(entryAddress, level.size, updated) }
                let pageMask: UInt64 = (1 << level.shift) - 1
                if level.size == 4, level.shift == 22 {
                    // A 4 MiB page: bits 20:13 of the entry are bits 39:32 of the address.
                    return (entry & 0xffc0_0000) | ((entry >> 13) & 0xff) << 32 | (address & pageMask)
                }
                return (entry & frameMask & ~pageMask) | (address & pageMask)
            }
            if updated != entry { writeEntry(entryAddress, level.size, updated) }
            table = entry & (level.size == 8 ? frameMask : 0xffff_f000)
        }
        throw notPresent
    }

    /// The protection checks of a present page.
    private func check(writable: Bool, user: Bool, write: Bool) throws(Fault) {
        let code: UInt32 = 1 | (write ? 2 : 0) | (userMode ? 4 : 0)
        if userMode {
            guard user, writable || !write else { throw Fault(errorCode: code) }
        } else {
            // CR0.WP: supervisor writes honour R/W. CR4.SMAP: no supervisor data access to user pages unless RFLAGS.AC.
            if write, !writable, cr0 & (1 << 16) != 0 { throw Fault(errorCode: code) }
            if user, cr4 & (1 << 21) != 0, !alignmentCheckFlag { throw Fault(errorCode: code) }
        }
    }
}
