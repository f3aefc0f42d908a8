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
    /// An address that must be page-aligned is not.
    case misalignedAddress(GuestAddress)
    /// `madvise` refused `advice` (its name, such as `"MADV_DONTNEED"`) with this errno.
    case adviseFailed(advice: String, errno: Int32)
    /// The image file holds `found` bytes but the RAM layout needs `expected`.
    case imageTooSmall(expected: UInt64, found: UInt64)
    /// A memory image's range `region` (an index in ascending order) differs
    /// from this memory's, or one has more ranges than the other.
    case imageLayoutMismatch(region: Int)
    /// The file to write an image to is the one this memory is mapped from:
    /// truncating it would pull the pages out from under the mapping.
    case imageIsMappedFile
    /// The file to write an image to is open with `O_APPEND`, which makes
    /// `pwrite` ignore the offsets the image's layout depends on.
    case imageFileAppendOnly
    /// `fstat` on an image file failed with this errno.
    case imageStatFailed(errno: Int32)
    /// Duplicating the image file's descriptor failed with this errno.
    case imageDescriptorFailed(errno: Int32)
    /// `ftruncate` of an image file to `size` bytes failed with this errno.
    case imageTruncateFailed(size: UInt64, errno: Int32)
    /// `pwrite` to an image file at `offset` failed with this errno.
    case imageWriteFailed(offset: UInt64, errno: Int32)
    /// `pread` from an image file at `offset` failed with this errno.
    case imageReadFailed(offset: UInt64, errno: Int32)
    /// `lseek` (`SEEK_DATA`/`SEEK_HOLE`) on an image file at `offset` failed with this errno.
    case extentScanFailed(offset: UInt64, errno: Int32)
    /// `memfd_create` for an in-memory image failed with this errno.
    case memfdFailed(errno: Int32)
    /// Sealing an in-memory image (`F_ADD_SEALS`) failed with this errno.
    case sealFailed(errno: Int32)
    /// Reading `/proc/self/pagemap` failed with this errno.
    case pagemapFailed(errno: Int32)
    /// A dirty bitmap names a region base that is not one of this memory's regions.
    case unknownDirtyRegion(GuestAddress)
    /// A dirty bitmap of `words` 64-bit words names pages past the end of the
    /// region at `region`, which has `regionPages` pages.
    case dirtyBitmapOutOfRange(region: GuestAddress, words: Int, regionPages: UInt64)
    /// A vectored I/O call named more buffers than the host takes at once.
    case tooManySegments(Int, maximum: Int)
    /// A host I/O call (`operation`, such as `"preadv"`) between a descriptor
    /// and guest buffers failed with this errno (`EAGAIN` included).
    case hostIOFailed(operation: String, errno: Int32)
    /// A memfd offered as shared guest RAM holds `found` bytes; the RAM layout needs exactly `expected`.
    case sharedMemorySizeMismatch(expected: UInt64, found: UInt64)
    /// A descriptor offered as shared guest RAM is not a memfd that cannot shrink (`F_GET_SEALS` gave `seals`, or failed: -1).
    case sharedMemoryNotSealed(seals: Int32)
    /// Giving pages of shared (memfd) RAM back with `fallocate(PUNCH_HOLE)` failed with this errno.
    case punchHoleFailed(errno: Int32)

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
        case .misalignedAddress(let address):
            return "guest address \(address) is not page-aligned"
        case .adviseFailed(let advice, let errno):
            return "madvise(\(advice)) on guest RAM failed (errno \(errno))"
        case .imageTooSmall(let expected, let found):
            return "memory image holds \(found) bytes but guest RAM needs \(expected)"
        case .imageLayoutMismatch(let region):
            return "memory image range \(region) does not match guest RAM's layout"
        case .imageIsMappedFile:
            return "cannot write a memory image over the file the memory is mapped from"
        case .imageFileAppendOnly:
            return "cannot write a memory image to a file opened with O_APPEND"
        case .imageStatFailed(let errno):
            return "fstat on a memory image failed (errno \(errno))"
        case .imageDescriptorFailed(let errno):
            return "cannot keep a descriptor of the memory image (errno \(errno))"
        case .imageTruncateFailed(let size, let errno):
            return "ftruncate of a memory image to \(size) bytes failed (errno \(errno))"
        case .imageWriteFailed(let offset, let errno):
            return "pwrite to a memory image at offset \(offset) failed (errno \(errno))"
        case .imageReadFailed(let offset, let errno):
            return "pread from a memory image at offset \(offset) failed (errno \(errno))"
        case .extentScanFailed(let offset, let errno):
            return "lseek(SEEK_DATA/SEEK_HOLE) on a memory image at offset \(offset) failed (errno \(errno))"
        case .memfdFailed(let errno):
            return "memfd_create for a memory image failed (errno \(errno))"
        case .sealFailed(let errno):
            return "sealing a memory image failed (errno \(errno))"
        case .pagemapFailed(let errno):
            return "reading /proc/self/pagemap failed (errno \(errno))"
        case .unknownDirtyRegion(let base):
            return "dirty bitmap names a region at \(base), which is not a guest RAM region"
        case .dirtyBitmapOutOfRange(let region, let words, let pages):
            return "dirty bitmap of \(words) words for the region at \(region) names pages past its \(pages) pages"
        case .tooManySegments(let count, let maximum):
            return "\(count) guest buffers in one I/O call, more than the host's \(maximum)"
        case .hostIOFailed(let operation, let errno):
            return "\(operation) between a host descriptor and guest RAM failed (errno \(errno))"
        case .sharedMemorySizeMismatch(let expected, let found):
            return "the memfd offered as guest RAM holds \(found) bytes, the RAM layout needs exactly \(expected)"
        case .sharedMemoryNotSealed(let seals):
            return "the descriptor offered as guest RAM is not a memfd sealed against shrinking (F_GET_SEALS: \(seals))"
        case .punchHoleFailed(let errno):
            return "fallocate(PUNCH_HOLE) on the guest RAM memfd failed (errno \(errno))"
        }
    }
}
