import X86Boot

#if canImport(Glibc)
    import Glibc
#endif

/// Reading guest images from disk, with errors a user can act on.
public enum GuestFile {
    public enum ReadError: Error, Hashable, Sendable, CustomStringConvertible {
        case cannotOpen(errno: Int32)
        case notARegularFile
        case tooLarge(size: UInt64, limit: UInt64)
        case readFailed(errno: Int32)

        public var description: String {
            switch self {
            case .cannotOpen(let code): return "cannot open: \(String(cString: strerror(code)))"
            case .notARegularFile: return "is not a regular file"
            case .tooLarge(let size, let limit): return "is \(size) bytes, larger than the \(limit) bytes it could occupy"
            case .readFailed(let code): return "cannot read: \(String(cString: strerror(code)))"
            }
        }
    }

    /// The whole contents of `path`, refusing anything larger than `limit` bytes
    /// before reading it (an image can never be larger than guest RAM).
    public static func read(_ path: String, limit: UInt64 = 1 << 36) throws(ReadError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw .cannotOpen(errno: errno) }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) != 0 { throw .readFailed(errno: errno) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .notARegularFile }
        let size = UInt64(info.st_size)
        guard size <= limit else { throw .tooLarge(size: size, limit: limit) }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { buffer in
                guard let base = buffer.baseAddress else { return 0 }
                return Glibc.read(fd, base + done, buffer.count - done)
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw .readFailed(errno: errno) }
            if n == 0 { break }  // the file shrank while we read it
            done += n
        }
        return Array(bytes.prefix(done))
    }

    /// Whether `bytes` look like an ELF file (start with `\x7fELF`).
    public static func isELF(_ bytes: [UInt8]) -> Bool { ELF64Image.hasMagic(bytes) }
}

extension GuestFile {
    /// Whether `bytes` are a Linux bzImage: the boot-sector signature 0xAA55 at
    /// 0x1fe and "HdrS" at 0x202 (Documentation/arch/x86/boot.rst).
    public static func isBzImage(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 0x206 && bytes[0x1fe] == 0x55 && bytes[0x1ff] == 0xaa && Array(bytes[0x202..<0x206]) == Array("HdrS".utf8)
    }

    /// Whether `bytes` are a Multiboot kernel: a Multiboot header magic in the
    /// first 8 KiB, and not a bzImage (which the Linux boot protocol takes).
    public static func isMultiboot(_ bytes: [UInt8]) -> Bool { !isBzImage(bytes) && MultibootKernel.isMultiboot(bytes) }
}
