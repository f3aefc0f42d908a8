/// Finds room in guest RAM for the VMM's own boot structures (GDT, page
/// tables, stack, boot information) around an image that is already placed.
///
/// Each structure has a traditional address (`X86Layout`, `MultibootLayout`);
/// it goes there when that is free, so guests built for the usual memory map
/// see what they always saw. When the image sits there (a Multiboot kernel
/// linked at 0x8000, an ELF with a headers-only segment at 0), the structure
/// goes to the lowest free place instead: below, between or above the image's
/// segments, as QEMU's Multiboot loader puts its information after the kernel.
/// Only when no free place is left is the image refused.
///
/// Pure bookkeeping over address ranges: nothing is written to guest memory.
public struct BootMemoryPlanner: Hashable, Sendable {
    /// The free ranges, sorted and disjoint.
    public private(set) var free: [Range<UInt64>]

    /// `available` is the RAM the structures may use (overlaps allowed);
    /// `occupied` is what the image and anything else already placed hold.
    public init(available: [Range<UInt64>], occupied: [Range<UInt64>]) {
        var merged: [Range<UInt64>] = []
        for range in available.filter({ !$0.isEmpty }).sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = merged.last, range.lowerBound <= last.upperBound {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        free = merged
        for range in occupied { remove(range) }
    }

    /// Whether all of `range` is free.
    public func isFree(_ range: Range<UInt64>) -> Bool {
        free.contains { $0.lowerBound <= range.lowerBound && range.upperBound <= $0.upperBound }
    }

    /// Marks `range` as used.
    public mutating func remove(_ range: Range<UInt64>) {
        guard !range.isEmpty else { return }
        var result: [Range<UInt64>] = []
        for piece in free {
            guard piece.overlaps(range) else {
                result.append(piece)
                continue
            }
            if piece.lowerBound < range.lowerBound { result.append(piece.lowerBound..<range.lowerBound) }
            if range.upperBound < piece.upperBound { result.append(range.upperBound..<piece.upperBound) }
        }
        free = result
    }

    /// Claims `size` bytes aligned to `alignment` (a power of two): at
    /// `preferred` if that is free, otherwise at the lowest free aligned
    /// address at or above `lowest` (then, if none is, at or above
    /// `X86Layout.biosDataAreaEnd`, then at or above 0: the real-mode IVT and
    /// BIOS data area are the last resort), ending at or below `limit`. `nil`
    /// when nothing fits.
    public mutating func claim(
        size: UInt64, alignment: UInt64, preferred: UInt64? = nil, lowest: UInt64 = X86Layout.biosDataAreaEnd, limit: UInt64 = 1 << 32
    )
        -> UInt64?
    {
        if let preferred, preferred & (alignment - 1) == 0, preferred.addingReportingOverflow(size).overflow == false,
            preferred + size <= limit, isFree(preferred..<preferred + size)
        {
            remove(preferred..<preferred + size)
            return preferred
        }
        for floor in [lowest, X86Layout.biosDataAreaEnd, 0] {
            if let address = lowestFit(size: size, alignment: alignment, lowest: floor, limit: limit) {
                remove(address..<address + size)
                return address
            }
        }
        return nil
    }

    func lowestFit(size: UInt64, alignment: UInt64, lowest: UInt64, limit: UInt64) -> UInt64? {
        for piece in free {
            let (raised, overflow) = max(piece.lowerBound, lowest).addingReportingOverflow(alignment - 1)
            guard !overflow else { return nil }
            let start = raised & ~(alignment - 1)
            let (end, endOverflow) = start.addingReportingOverflow(size)
            if !endOverflow, end <= min(piece.upperBound, limit) { return start }
        }
        return nil
    }
}
