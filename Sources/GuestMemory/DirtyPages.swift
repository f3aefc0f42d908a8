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

    /// The bitmap naming `pages` (page indices within the region, each below `regionPages`).
    public init(regionBase: GuestAddress, pages: some Sequence<Int>, regionPages: Int) {
        var bitmap = [UInt64](repeating: 0, count: (regionPages + 63) / 64)
        for page in pages where page >= 0 && page < regionPages { bitmap[page / 64] |= 1 << UInt64(page % 64) }
        self.init(regionBase: regionBase, bitmap: bitmap)
    }
}
