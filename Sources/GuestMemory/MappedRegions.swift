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

    init(_ regions: [GuestMemory.Region]) { self.regions = regions }

    deinit {
        for region in regions { munmap(region.host, Int(region.size)) }
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
