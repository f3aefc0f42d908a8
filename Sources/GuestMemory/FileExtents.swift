#if canImport(Glibc)
    import Glibc
#endif

/// Where a sparse file holds data, found with `lseek`'s `SEEK_DATA` and `SEEK_HOLE`.
enum FileExtents {
    /// Inserts into `pages` each page `i` for which the file's bytes
    /// `[start + i * 4096, start + (i + 1) * 4096)` overlap a data extent.
    ///
    /// Filesystems without hole tracking report the whole file as data, which
    /// is correct, only slower. `lseek` moves `fd`'s file position, so `fd`
    /// must be one no one else reads sequentially.
    static func markData(of fd: Int32, start: UInt64, into pages: inout PageBitmap) throws(GuestMemoryError) {
        let pageSize = GuestMemory.pageSize
        let end = start + UInt64(pages.count) * pageSize
        var offset = start
        while offset < end {
            let data = lseek(fd, off_t(offset), LinuxABI.seekData)
            if data < 0 {
                // ENXIO: no data at or after `offset`, the rest is a hole.
                if errno == ENXIO { return }
                throw .extentScanFailed(offset: offset, errno: errno)
            }
            let dataStart = UInt64(data)
            if dataStart >= end { return }
            let hole = lseek(fd, data, LinuxABI.seekHole)
            guard hole >= 0 else { throw .extentScanFailed(offset: dataStart, errno: errno) }
            let dataEnd = min(UInt64(hole), end)
            // Holes are only ever reported at filesystem block granularity, so
            // rounding outwards to pages includes each page with any data.
            let first = Int((dataStart - start) / pageSize)
            let last = Int((dataEnd - start + pageSize - 1) / pageSize)
            pages.insert(first..<last)
            guard dataEnd > offset else { return }
            offset = dataEnd
        }
    }
}
