import SystemPackage
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// The state file's framing: a fixed header, then the payload (the machine
/// state as JSON).
///
/// ```
/// offset  size  field
///      0     8  magic "SWVMSNAP"
///      8     4  format version, little-endian (1)
///     12     4  header size (32)
///     16     8  payload length
///     24     4  CRC-32 of the payload
///     28     4  reserved, zero
///     32     …  payload
/// ```
enum SnapshotFile {
    static let magic: [UInt8] = Array("SWVMSNAP".utf8)
    static let formatVersion: UInt32 = 1
    static let headerSize = 32
    /// No machine state comes near this (a 255-vCPU state is a few MiB):
    /// larger files are refused before they are read.
    static let maximumSize: UInt64 = 256 << 20

    /// The framed bytes for `payload`.
    static func frame(_ payload: [UInt8]) -> [UInt8] {
        var bytes = magic
        append(formatVersion, to: &bytes)
        append(UInt32(headerSize), to: &bytes)
        append(UInt64(payload.count), to: &bytes)
        append(CRC32.checksum(payload), to: &bytes)
        append(UInt32(0), to: &bytes)
        return bytes + payload
    }

    /// The payload of framed `bytes` read from `path`, after every check.
    static func payload(of bytes: [UInt8], path: String) throws(SnapshotError) -> ArraySlice<UInt8> {
        guard bytes.count >= headerSize else { throw .truncated(path: path, expected: UInt64(headerSize), found: UInt64(bytes.count)) }
        guard Array(bytes[0..<8]) == magic else { throw .badMagic(path: path) }
        let version: UInt32 = integer(bytes, at: 8)
        guard version == formatVersion else { throw .unsupportedVersion(path: path, found: version, supported: formatVersion) }
        let header: UInt32 = integer(bytes, at: 12)
        guard header == UInt32(headerSize) else { throw .malformed(path: path, reason: "header size \(header), expected \(headerSize)") }
        let length: UInt64 = integer(bytes, at: 16)
        let available = UInt64(bytes.count - headerSize)
        guard length <= available else {
            // The length is the file's word: it may be anything, up to 2^64 - 1.
            let (expected, overflow) = length.addingReportingOverflow(UInt64(headerSize))
            throw .truncated(path: path, expected: overflow ? .max : expected, found: UInt64(bytes.count))
        }
        guard length == available else {
            throw .malformed(path: path, reason: "\(available - length) bytes after the payload")
        }
        let payload = bytes[headerSize...]
        let expected: UInt32 = integer(bytes, at: 24)
        let found = CRC32.checksum(payload)
        guard expected == found else { throw .checksumMismatch(path: path, expected: expected, found: found) }
        return payload
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        for i in 0..<MemoryLayout<T>.size { bytes.append(UInt8(truncatingIfNeeded: value >> (i * 8))) }
    }

    private static func integer<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int) -> T {
        var value: T = 0
        for i in 0..<MemoryLayout<T>.size { value |= T(bytes[offset + i]) << (i * 8) }
        return value
    }

    // MARK: Files

    /// Reads the whole file at `path` (at most `maximumSize` bytes).
    static func read(_ path: String) throws(SnapshotError) -> [UInt8] {
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec]) } catch {
            throw .io(path: path, operation: "open", errno: code(error))
        }
        defer { try? fd.close() }
        var info = stat()
        guard fstat(fd.rawValue, &info) == 0 else { throw .io(path: path, operation: "stat", errno: errno) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw .malformed(path: path, reason: "not a regular file") }
        let size = UInt64(info.st_size)
        guard size <= maximumSize else { throw .tooLarge(path: path, size: size, limit: maximumSize) }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        var done = 0
        do {
            while done < bytes.count {
                let count = try bytes.withUnsafeMutableBytes { buffer in
                    try fd.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
                }
                if count == 0 { break }
                done += count
            }
        } catch { throw .io(path: path, operation: "read", errno: code(error)) }
        return Array(bytes.prefix(done))
    }

    /// Writes `bytes` to `path` through a temporary file and a rename, with
    /// `fsync`, so a crash leaves the old file or the new one, never half of one.
    static func write(_ bytes: [UInt8], to path: String) throws(SnapshotError) {
        let temporary = path + ".partial"
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(
                FilePath(temporary), .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: [.ownerReadWrite])
        } catch { throw .io(path: temporary, operation: "create", errno: code(error)) }
        do {
            try fd.closeAfter {
                _ = try fd.writeAll(bytes)
                guard fsync(fd.rawValue) == 0 else { throw Errno(rawValue: errno) }
            }
        } catch {
            unlink(temporary)
            throw .io(path: temporary, operation: "write", errno: code(error))
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw .io(path: path, operation: "rename into place", errno: code)
        }
    }

    /// The errno of a SystemPackage error (whose calls throw untyped).
    static func code(_ error: any Error) -> Int32 { (error as? Errno)?.rawValue ?? EIO }
}
