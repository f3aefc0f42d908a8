import CHostSupport
import GuestMemory

#if canImport(Glibc)
    import Glibc
#endif

/// The raw image file behind a virtio-blk device: opened once, its size
/// fixed at open (the capacity the guest sees), read-only or writable, and
/// optionally with `O_DIRECT` (bypassing the host's page cache).
///
/// Owns its descriptors and closes them in `deinit`.
public final class BlockImage: Sendable {
    /// The image's path, for messages.
    public let path: String
    /// Whether writes are refused.
    public let isReadOnly: Bool
    /// The image's size in bytes when it was opened.
    public let size: UInt64
    /// The descriptor buffered I/O goes through.
    let fd: Int32
    /// With `O_DIRECT`, a second descriptor for requests whose guest buffers
    /// are 512-byte aligned; the others go through `fd` (the kernel keeps
    /// the two coherent by flushing the cached range around direct I/O).
    let directFD: Int32?

    /// Opens `path`. Throws naming the file and what was wrong: missing, a
    /// directory, not writable for a writable disk, empty.
    public init(path: String, readOnly: Bool, direct: Bool = false) throws(BlockImageError) {
        var status = stat()
        guard stat(path, &status) == 0 else { throw .cannotOpen(path: path, errno: errno) }
        if (status.st_mode & S_IFMT) == S_IFDIR { throw .isDirectory(path: path) }
        let flags = (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC
        let fd = open(path, flags)
        guard fd >= 0 else { throw .cannotOpen(path: path, errno: errno) }
        var opened = stat()
        guard fstat(fd, &opened) == 0 else {
            let error = errno
            close(fd)
            throw .cannotOpen(path: path, errno: error)
        }
        var size = UInt64(max(0, opened.st_size))
        if (opened.st_mode & S_IFMT) == S_IFBLK {
            let end = lseek(fd, 0, SEEK_END)
            size = UInt64(max(0, end))
        }
        guard size >= BlockImage.sectorSize else {
            close(fd)
            throw .tooSmall(path: path, size: size)
        }
        var directFD: Int32?
        if direct {
            let other = open(path, flags | chost_o_direct)
            guard other >= 0 else {
                let error = errno
                close(fd)
                throw .directIOUnsupported(path: path, errno: error)
            }
            directFD = other
        }
        self.path = path
        self.isReadOnly = readOnly
        // Whole sectors only: a trailing partial sector is not addressable.
        self.size = size / BlockImage.sectorSize * BlockImage.sectorSize
        self.fd = fd
        self.directFD = directFD
    }

    deinit {
        close(fd)
        if let directFD { close(directFD) }
    }

    /// The unit of a virtio-blk sector number.
    public static let sectorSize: UInt64 = 512

    /// The number of 512-byte sectors.
    public var sectorCount: UInt64 { size / Self.sectorSize }

    /// The descriptor for a transfer into or out of `ranges`: the direct one
    /// when every buffer is sector-aligned in address and length.
    func descriptor(for ranges: [GuestRange]) -> Int32 {
        guard let directFD else { return fd }
        let aligned = ranges.allSatisfy { $0.address.rawValue % Self.sectorSize == 0 && $0.length % Self.sectorSize == 0 }
        return aligned ? directFD : fd
    }

    /// Makes what was written durable. The corresponding C function is `fdatasync`.
    func flush() -> Int32 {
        fdatasync(fd) == 0 ? 0 : errno
    }

    /// Gives `[offset, offset + length)` back to the host file system (a hole),
    /// or zeroes it in place when `deallocate` is false. 0 or an errno.
    /// The corresponding C function is `fallocate`.
    func zero(offset: UInt64, length: UInt64, deallocate: Bool) -> Int32 {
        let mode = deallocate ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE
        if fallocate(fd, mode, off_t(offset), off_t(length)) == 0 { return 0 }
        let error = errno
        guard error == EOPNOTSUPP, !deallocate else { return error }
        // A file system without ZERO_RANGE: a hole reads as zeros too.
        return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(offset), off_t(length)) == 0 ? 0 : errno
    }
}
