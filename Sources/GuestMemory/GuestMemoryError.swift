import VMCore

/// Why a guest-memory operation failed.
public enum GuestMemoryError: Error, Hashable, Sendable, CustomStringConvertible {
    /// `[address, address + length)` is not entirely inside one RAM region.
    case outOfBounds(address: GuestAddress, length: UInt64)
    /// `address + length` does not fit in 64 bits.
    case addressOverflow(address: GuestAddress, length: UInt64)
    /// A region's size is zero or not a whole number of pages.
    case invalidRegionSize(UInt64)
    /// A region's base is not page-aligned.
    case misalignedRegion(GuestAddress)
    /// Two regions overlap, or one wraps past the end of the address space.
    case overlappingRegions(GuestAddress, GuestAddress)
    /// The host refused to map the memory (`mmap` failed with this errno).
    case mapFailed(size: UInt64, errno: Int32)

    public var description: String {
        switch self {
        case .outOfBounds(let address, let length):
            return "guest access of \(length) bytes at \(address) is outside guest RAM"
        case .addressOverflow(let address, let length):
            return "guest access of \(length) bytes at \(address) overflows the address space"
        case .invalidRegionSize(let size):
            return "guest RAM region size \(size) is not a non-zero multiple of \(GuestMemory.pageSize) bytes"
        case .misalignedRegion(let base):
            return "guest RAM region base \(base) is not page-aligned"
        case .overlappingRegions(let a, let b):
            return "guest RAM regions at \(a) and \(b) overlap"
        case .mapFailed(let size, let errno):
            return "cannot map \(size) bytes of guest RAM (errno \(errno))"
        }
    }
}
