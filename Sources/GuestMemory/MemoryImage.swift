import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// A sparse, sealed, in-memory copy of guest RAM that any number of
/// `GuestMemory` values can be cloned from, copy-on-write.
///
/// A test fixture boots a guest once, calls `GuestMemory.makeImage()`, and
/// gives each test `GuestMemory(cloning:)`: a private view that costs only
/// the pages the test writes, and that `GuestMemory.resetPages(_:from:)` can
/// put back page by page. The image owns a `memfd` laid out like an image
/// file (regions concatenated in ascending guest-address order, never-touched
/// pages left as holes) and sealed against writes, shrinking and growing, so
/// no clone can see it change. It holds no pointer; clones map the file.
///
/// One cost to know: tmpfs fills a hole when a mapping of it faults there,
/// so a clone that *reads* a page the image does not hold adds a zero page
/// to the memfd (once, shared by all clones; `allocatedBytes` shows it).
/// The contents never change, and saving skips such pages as zeros.
public final class MemoryImage: Sendable {
    /// The memfd; closed in `deinit`. Clones keep descriptors of their own.
    let fd: Int32

    /// The guest-physical ranges the image holds, in ascending order, at file
    /// offsets that are the sums of the sizes before them.
    public let ranges: [(base: GuestAddress, size: UInt64)]

    /// What writing the image did.
    public let statistics: MemoryImageStatistics

    /// Takes ownership of `fd`.
    init(fd: Int32, ranges: [(base: GuestAddress, size: UInt64)], statistics: MemoryImageStatistics) {
        self.fd = fd
        self.ranges = ranges
        self.statistics = statistics
    }

    deinit { close(fd) }

    /// The size of guest RAM the image holds, in bytes.
    public var size: UInt64 { ranges.reduce(0) { $0 + $1.size } }

    /// The memory the image occupies: only the pages that were written.
    /// The corresponding C function is `fstat` (`st_blocks` × 512).
    public var allocatedBytes: UInt64 {
        var status = stat()
        // fstat cannot fail on a descriptor this object owns; if it did, that is a bug.
        precondition(fstat(fd, &status) == 0, "fstat on a memory image's own memfd failed")
        return UInt64(status.st_blocks) * 512
    }

    /// Whether the image holds exactly the ranges `ranges`, or the index of
    /// the first range that differs (the shorter count if one list is a prefix).
    func firstLayoutDifference(from ranges: [(base: GuestAddress, size: UInt64)]) -> Int? {
        for i in 0..<min(ranges.count, self.ranges.count)
        where ranges[i].base != self.ranges[i].base || ranges[i].size != self.ranges[i].size {
            return i
        }
        return ranges.count == self.ranges.count ? nil : min(ranges.count, self.ranges.count)
    }
}
