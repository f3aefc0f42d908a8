#if canImport(Glibc)
    import Glibc
#endif

/// A new file that is unlinked and closed when the value ends.
struct TemporaryFile: ~Copyable {
    let fd: Int32
    let path: String

    /// A file in `directory`: /tmp is a disk filesystem here (ext4), /dev/shm
    /// is tmpfs, and each tracks holes its own way.
    init(in directory: String = "/tmp") {
        var template = Array("\(directory)/swiftvmm-guestmem-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { $0.baseAddress.map { mkstemp($0) } ?? -1 }
        precondition(fd >= 0, "mkstemp failed: errno \(errno)")
        self.fd = fd
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// The file's size and the bytes it occupies on disk (`st_blocks` × 512).
    var sizes: (size: UInt64, allocated: UInt64) {
        var status = stat()
        precondition(fstat(fd, &status) == 0)
        return (UInt64(status.st_size), UInt64(status.st_blocks) * 512)
    }

    /// `count` bytes at `offset` (fewer at the end of the file).
    func read(count: Int, at offset: UInt64) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        return Array(bytes.prefix(max(0, got)))
    }
}
