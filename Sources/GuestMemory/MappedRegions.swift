import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// The host mappings of guest RAM, shared by a `GuestMemory` and every
/// `GuestMemoryView` of it, and unmapped when the last of them ends: a device
/// thread that still holds a view can never touch memory that is gone.
///
/// The pointers never change after `init` and never leave the module; what
/// the guest and the VMM's threads do to the bytes concurrently is the guest's
/// own business, as on real hardware, hence `@unchecked Sendable`.
final class MappedRegions: @unchecked Sendable {
    let regions: [GuestMemory.Region]
    /// The pages written through the VMM's accessors, once tracking starts.
    let hostWrites = HostWriteLog()
    /// The memfd the regions are shared mappings of (region `i` at its
    /// `fileOffset`), or -1 for private memory. Closed after the unmapping.
    let sharedFile: Int32

    init(_ regions: [GuestMemory.Region], sharedFile: Int32 = -1) {
        self.regions = regions
        self.sharedFile = sharedFile
    }

    deinit {
        for region in regions { munmap(region.host, Int(region.size)) }
        if sharedFile >= 0 { close(sharedFile) }
    }

    /// Gives `length` bytes of RAM at `host` (in `region`) back to the host:
    /// `MADV_DONTNEED` for private memory; for shared memory, whose pages
    /// `MADV_DONTNEED` only unmaps (they stay in the memfd), a hole punched
    /// in the memfd, which frees them and unmaps them everywhere.
    /// The corresponding C functions are `madvise` and `fallocate`.
    func release(_ host: UnsafeMutableRawPointer, length: UInt64) throws(GuestMemoryError) {
        guard sharedFile >= 0 else {
            guard madvise(host, Int(length), MADV_DONTNEED) == 0 else { throw .adviseFailed(advice: "MADV_DONTNEED", errno: errno) }
            return
        }
        guard let region = regions.first(where: { host >= $0.host && host < $0.host + Int($0.size) }) else { return }
        let offset = region.fileOffset + UInt64(host - region.host)
        guard LinuxABI.punchHole(sharedFile, offset: off_t(offset), length: off_t(length)) == 0 else {
            throw .punchHoleFailed(errno: errno)
        }
    }

    /// The host pointer for `[address, address + length)`, or an error.
    /// A zero-length access is valid anywhere up to and including a region's end.
    func locate(_ address: GuestAddress, _ length: UInt64, writing: Bool = false) throws(GuestMemoryError)
        -> UnsafeMutableRawPointer
    {
        let (end, overflow) = address.rawValue.addingReportingOverflow(length)
        if overflow { throw .addressOverflow(address: address, length: length) }
        for (index, region) in regions.enumerated() where address.rawValue >= region.base && address.rawValue <= region.end {
            guard end <= region.end else { continue }
            if writing, length > 0, hostWrites.isEnabled {
                let first = address.rawValue - region.base
                hostWrites.mark(
                    region: index, firstPage: Int(first / GuestMemory.pageSize),
                    lastPage: Int((first + length - 1) / GuestMemory.pageSize))
            }
            return region.host + Int(address.rawValue - region.base)
        }
        throw .outOfBounds(address: address, length: length)
    }
}
