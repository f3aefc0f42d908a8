import VMCore

/// Pages of one RAM region, as a bitmap: bit `i % 64` of `bitmap[i / 64]` is
/// page `i` of the region that starts at `regionBase`.
///
/// This is the layout `KVM_GET_DIRTY_LOG` returns for a memory slot, so a
/// slot's dirty log can be handed to `GuestMemory.resetPages(_:from:)` as it is.
public struct DirtyPages: Hashable, Sendable {
    /// The guest-physical base of the region the bitmap describes.
    public var regionBase: GuestAddress
    /// One bit per page of the region; may be shorter than the region (the
    /// missing words are clear) but not longer.
    public var bitmap: [UInt64]

    public init(regionBase: GuestAddress, bitmap: [UInt64]) {
        self.regionBase = regionBase
        self.bitmap = bitmap
    }

    /// The bitmap naming `pages`, indices of pages within the region, each
    /// zero or more: just long enough for the largest, so that a page past
    /// the region's end is reported by `resetPages(_:from:)`, not dropped here.
    public init(regionBase: GuestAddress, pages: some Sequence<Int>) {
        var bitmap: [UInt64] = []
        for page in pages {
            precondition(page >= 0, "page index \(page) is negative")
            if page / 64 >= bitmap.count { bitmap += [UInt64](repeating: 0, count: page / 64 + 1 - bitmap.count) }
            bitmap[page / 64] |= 1 << UInt64(page % 64)
        }
        self.init(regionBase: regionBase, bitmap: bitmap)
    }
}
