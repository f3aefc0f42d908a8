import VMCore

#if canImport(Glibc)
    import Glibc
#endif

extension GuestMemory {
    /// The pages of each region that may hold something other than zeros:
    /// those present or swapped in this process, and those with data in the
    /// file the memory is mapped from. Every other page reads as zeros, so a
    /// migration's first pass sends it as a "zero" marker without reading it.
    /// The corresponding file is `/proc/self/pagemap`.
    public func populatedPages() throws(GuestMemoryError) -> [DirtyPages] {
        let pagemap = try PageMap()
        var result: [DirtyPages] = []
        for region in mapped.regions {
            var candidates = PageBitmap(count: region.pageCount)
            try pagemap.markMapped(address: UInt(bitPattern: region.host), into: &candidates, includingSwapped: true)
            for file in [backingFile, mapped.sharedFile] where file >= 0 {
                try FileExtents.markData(of: file, start: region.fileOffset, into: &candidates)
            }
            result.append(DirtyPages(regionBase: GuestAddress(region.base), bitmap: candidates.words))
        }
        return result
    }
}

extension GuestMemoryView {
    /// Appends the page at `address` (page-aligned, in RAM) to `bytes` and
    /// returns true, or returns false and appends nothing when the page is all
    /// zeros: a migration sends such a page as a marker. Reading is the
    /// guest's business: a page it writes meanwhile is sent again in a later round.
    public func appendPage(at address: GuestAddress, to bytes: inout [UInt8]) throws(GuestMemoryError) -> Bool {
        guard address.rawValue % GuestMemory.pageSize == 0 else { throw .misalignedAddress(address) }
        let page = Int(GuestMemory.pageSize)
        let source = try mapped.locate(address, GuestMemory.pageSize)
        if source.load(as: UInt64.self) == 0, memcmp(source, source + 8, page - 8) == 0 { return false }
        // Typed, so that the append is one copy (a raw buffer appends byte by byte in a debug build).
        bytes.append(contentsOf: UnsafeBufferPointer(start: source.assumingMemoryBound(to: UInt8.self), count: page))
        return true
    }
}
