import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// Why a snapshot could not be written, read or restored.
///
/// A snapshot is input like any other file: whatever its bytes, restoring it
/// gives one of these (naming the file and what was expected), never a crash.
public enum SnapshotError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file cannot be opened, read, written or created.
    case io(path: String, operation: String, errno: Int32)
    /// The file is shorter than its header says (or than a header).
    case truncated(path: String, expected: UInt64, found: UInt64)
    /// The file does not start with swiftvmm's snapshot magic.
    case badMagic(path: String)
    /// Written by a format version this swiftvmm does not read.
    case unsupportedVersion(path: String, found: UInt32, supported: UInt32)
    /// The payload's checksum does not match: the file was damaged.
    case checksumMismatch(path: String, expected: UInt32, found: UInt32)
    /// The payload is not a machine state this version understands.
    case malformed(path: String, reason: String)
    /// The state contradicts itself or this host (e.g. a memory file shorter
    /// than the RAM, more vCPUs than the hardware description).
    case inconsistent(String)
    /// The state file is larger than any state swiftvmm writes.
    case tooLarge(path: String, size: UInt64, limit: UInt64)

    public var description: String {
        switch self {
        case .io(let path, let operation, let errno): return "\(path): cannot \(operation): \(String(cString: strerror(errno)))"
        case .truncated(let path, let expected, let found):
            return "\(path): truncated: expected \(expected) bytes, found \(found)"
        case .badMagic(let path): return "\(path): not a swiftvmm snapshot (bad magic)"
        case .unsupportedVersion(let path, let found, let supported):
            return "\(path): snapshot format version \(found) is not supported (this swiftvmm reads version \(supported))"
        case .checksumMismatch(let path, let expected, let found):
            return "\(path): checksum mismatch (header says \(hex(expected)), contents give \(hex(found))): the file is damaged"
        case .malformed(let path, let reason): return "\(path): malformed machine state: \(reason)"
        case .inconsistent(let reason): return "inconsistent snapshot: \(reason)"
        case .tooLarge(let path, let size, let limit): return "\(path): \(size) bytes is larger than any machine state (limit \(limit))"
        }
    }
}
