/// Why a disk image could not be attached. Each names the file.
public enum BlockImageError: Error, Hashable, Sendable, CustomStringConvertible {
    /// `open` or `stat` failed with this errno (missing file, no permission, read-only file system).
    case cannotOpen(path: String, errno: Int32)
    /// The path is a directory.
    case isDirectory(path: String)
    /// The file is smaller than one 512-byte sector.
    case tooSmall(path: String, size: UInt64)
    /// `O_DIRECT` was asked for but the file system refuses it.
    case directIOUnsupported(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let errno):
            let reason: String
            switch errno {
            case 2: reason = "no such file"
            case 13: reason = "permission denied"
            case 30: reason = "read-only file system (use readonly=on)"
            default: reason = "errno \(errno)"
            }
            return "disk image \(path): cannot open: \(reason)"
        case .isDirectory(let path): return "disk image \(path): is a directory, expected a raw image file"
        case .tooSmall(let path, let size): return "disk image \(path): \(size) bytes, expected at least one 512-byte sector"
        case .directIOUnsupported(let path, let errno): return "disk image \(path): O_DIRECT refused (errno \(errno))"
        }
    }
}
