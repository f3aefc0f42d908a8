#if canImport(Glibc)
    import Glibc
#endif

/// This process's `/proc/self/pagemap`: one 64-bit entry per virtual page,
/// telling whether the page is present in RAM (bit 63) or swapped out (bit 62).
///
/// It lets a scan of guest RAM visit only the pages the guest (or a loader)
/// ever touched, instead of reading gigabytes of never-faulted zeros. Page
/// frame numbers are hidden from unprivileged readers, but these two bits are not.
struct PageMap: ~Copyable {
    private static let present: UInt64 = 1 << 63
    private static let swapped: UInt64 = 1 << 62
    /// A page-cache page of a file (or shared anonymous memory), not a private copy.
    private static let filePage: UInt64 = 1 << 61
    /// Entries read per `pread`: 4096 entries (32 KiB) cover 16 MiB of address space.
    private static let entriesPerRead = 4096

    private let fd: Int32

    /// Opens `/proc/self/pagemap`. The corresponding C function is `open`.
    init() throws(GuestMemoryError) {
        let fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .pagemapFailed(errno: errno) }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Inserts into `pages` each page `i` of `[address, address + pages.count * 4096)`
    /// that is present or (when `includingSwapped`) swapped out. With
    /// `excludingFilePages`, a present page that is the file's own page-cache
    /// page (in a private file mapping: read, never written) is left out.
    /// `address` is a host virtual address as an integer; nothing is dereferenced.
    func markMapped(
        address: UInt, into pages: inout PageBitmap, includingSwapped: Bool, excludingFilePages: Bool = false
    ) throws(GuestMemoryError) {
        let swapMask = includingSwapped ? Self.swapped : 0
        let fileMask = excludingFilePages ? Self.filePage : 0
        let firstEntry = Int(address / UInt(GuestMemory.pageSize))
        var buffer = [UInt64](repeating: 0, count: Self.entriesPerRead)
        var page = 0
        while page < pages.count {
            let wanted = min(Self.entriesPerRead, pages.count - page)
            let offset = off_t((firstEntry + page) * 8)
            let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, wanted * 8, offset) }
            if got < 0 {
                if errno == EINTR { continue }
                throw .pagemapFailed(errno: errno)
            }
            // The kernel returns whole entries; a short read still advances by what it gave.
            let entries = got / 8
            guard entries > 0 else { throw .pagemapFailed(errno: EIO) }
            for i in 0..<entries {
                let entry = buffer[i]
                if (entry & Self.present != 0 && entry & fileMask == 0) || entry & swapMask != 0 { pages.insert(page + i) }
            }
            page += entries
        }
    }
}
