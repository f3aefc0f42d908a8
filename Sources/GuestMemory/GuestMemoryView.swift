import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// A copyable handle on a machine's guest RAM, for the VMM's other threads
/// (device back ends on an event loop): the same bounds- and overflow-checked
/// accessors as `GuestMemory`, plus vectored file and socket I/O straight
/// between a descriptor and guest buffers, without a copy through the heap.
///
/// Get one from `GuestMemory.view`. The mappings live as long as any view.
public struct GuestMemoryView: Sendable {
    let mapped: MappedRegions

    init(_ mapped: MappedRegions) { self.mapped = mapped }

    /// The most buffers one vectored call takes (Linux's `IOV_MAX`).
    public static let maximumSegments = 1024

    /// Whether `[address, address + length)` lies entirely inside guest RAM.
    public func contains(_ address: GuestAddress, length: UInt64) -> Bool {
        (try? mapped.locate(address, length)) != nil
    }

    /// Copies `bytes` into guest RAM at `address`, all or nothing.
    public func write<Bytes: Collection>(_ bytes: Bytes, at address: GuestAddress) throws(GuestMemoryError)
    where Bytes.Element == UInt8 {
        let destination = try mapped.locate(address, UInt64(bytes.count), writing: true)
        let copied: Bool? = bytes.withContiguousStorageIfAvailable { source in
            if let base = source.baseAddress { destination.copyMemory(from: base, byteCount: source.count) }
            return true
        }
        if copied == nil {
            for (i, byte) in bytes.enumerated() { destination.storeBytes(of: byte, toByteOffset: i, as: UInt8.self) }
        }
    }

    /// Copies `count` bytes out of guest RAM at `address`.
    public func read(count: Int, at address: GuestAddress) throws(GuestMemoryError) -> [UInt8] {
        guard count >= 0 else { throw .outOfBounds(address: address, length: 0) }
        let source = try mapped.locate(address, UInt64(count))
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let base = buffer.baseAddress { base.update(from: source.assumingMemoryBound(to: UInt8.self), count: count) }
            initialized = count
        }
    }

    /// Sets `count` bytes at `address` to `byte`.
    public func fill(_ byte: UInt8, count: UInt64, at address: GuestAddress) throws(GuestMemoryError) {
        let destination = try mapped.locate(address, count, writing: true)
        memset(destination, Int32(byte), Int(count))
    }

    /// Reads a little-endian integer at `address` (x86 byte order, whatever the host's).
    public func readInteger<T: FixedWidthInteger>(at address: GuestAddress, as type: T.Type = T.self) throws(GuestMemoryError) -> T {
        let source = try mapped.locate(address, UInt64(MemoryLayout<T>.size))
        return T(littleEndian: source.loadUnaligned(as: T.self))
    }

    /// Writes `value` little-endian at `address`.
    public func writeInteger<T: FixedWidthInteger>(_ value: T, at address: GuestAddress) throws(GuestMemoryError) {
        let destination = try mapped.locate(address, UInt64(MemoryLayout<T>.size), writing: true)
        destination.storeBytes(of: value.littleEndian, as: T.self)
    }

    /// Gives `count` pages at `address` (page-aligned, inside one region)
    /// back to the host, as `GuestMemory.releasePages` does: for a balloon
    /// device's inflated and reported pages, on its thread. The guest reads
    /// zeros (or the image's content) there afterwards.
    /// The corresponding C function is `madvise` (`MADV_DONTNEED`), or for
    /// memfd-backed RAM `fallocate` (`FALLOC_FL_PUNCH_HOLE`).
    public func releasePages(at address: GuestAddress, count: UInt64) throws(GuestMemoryError) {
        guard address.rawValue % GuestMemory.pageSize == 0 else { throw .misalignedAddress(address) }
        let (length, overflow) = count.multipliedReportingOverflow(by: GuestMemory.pageSize)
        if overflow { throw .addressOverflow(address: address, length: .max) }
        try mapped.release(try mapped.locate(address, length), length: length)
    }

    // MARK: Vectored I/O between descriptors and guest buffers

    /// Reads from `fd` at `offset` into `ranges`, in order, and returns the
    /// bytes read (fewer at the end of the file). Every range is checked
    /// before anything is read. The corresponding C function is `preadv`.
    public func read(from fd: Int32, at offset: UInt64, into ranges: [GuestRange]) throws(GuestMemoryError) -> Int {
        guard let position = off_t(exactly: offset) else { throw .hostIOFailed(operation: "preadv", errno: EINVAL) }
        return try withVectors(ranges, writing: true, operation: "preadv") { vectors, count in
            preadv(fd, vectors, count, position)
        }
    }

    /// Writes `ranges`, in order, to `fd` at `offset` and returns the bytes
    /// written. The corresponding C function is `pwritev`.
    public func write(to fd: Int32, at offset: UInt64, from ranges: [GuestRange]) throws(GuestMemoryError) -> Int {
        guard let position = off_t(exactly: offset) else { throw .hostIOFailed(operation: "pwritev", errno: EINVAL) }
        return try withVectors(ranges, writing: false, operation: "pwritev") { vectors, count in
            pwritev(fd, vectors, count, position)
        }
    }

    /// Reads from a stream or packet descriptor (a tap, a socket) into
    /// `ranges`; `EAGAIN` comes back as `GuestMemoryError.hostIOFailed`.
    /// The corresponding C function is `readv`.
    public func read(from fd: Int32, into ranges: [GuestRange]) throws(GuestMemoryError) -> Int {
        try withVectors(ranges, writing: true, operation: "readv") { vectors, count in readv(fd, vectors, count) }
    }

    /// Writes `ranges` to a stream or packet descriptor. The corresponding C function is `writev`.
    public func write(to fd: Int32, from ranges: [GuestRange]) throws(GuestMemoryError) -> Int {
        try withVectors(ranges, writing: false, operation: "writev") { vectors, count in writev(fd, vectors, count) }
    }

    /// Sends `ranges` on a stream socket without raising `SIGPIPE` when the
    /// peer is gone (`EPIPE` comes back as `GuestMemoryError.hostIOFailed`).
    /// The corresponding C function is `sendmsg` (`MSG_NOSIGNAL`).
    public func send(to socket: Int32, from ranges: [GuestRange]) throws(GuestMemoryError) -> Int {
        try withVectors(ranges, writing: false, operation: "sendmsg") { vectors, count in
            var message = msghdr()
            message.msg_iov = UnsafeMutablePointer(mutating: vectors)
            message.msg_iovlen = Int(count)
            return sendmsg(socket, &message, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
        }
    }

    /// Calls `body` with one `iovec` per range, each checked against RAM
    /// (and logged as written by the host when `writing`), retrying on `EINTR`.
    private func withVectors(
        _ ranges: [GuestRange], writing: Bool, operation: String,
        _ body: (UnsafePointer<iovec>, Int32) -> Int
    ) throws(GuestMemoryError) -> Int {
        guard ranges.count <= Self.maximumSegments else { throw .tooManySegments(ranges.count, maximum: Self.maximumSegments) }
        var vectors: [iovec] = []
        vectors.reserveCapacity(ranges.count)
        for range in ranges where range.length > 0 {
            guard let length = Int(exactly: range.length) else { throw .addressOverflow(address: range.address, length: range.length) }
            let base = try mapped.locate(range.address, range.length, writing: writing)
            vectors.append(iovec(iov_base: base, iov_len: length))
        }
        if vectors.isEmpty { return 0 }
        while true {
            let done = vectors.withUnsafeBufferPointer { buffer in
                buffer.baseAddress.map { body($0, Int32(buffer.count)) } ?? 0
            }
            if done >= 0 { return done }
            if errno == EINTR { continue }
            throw .hostIOFailed(operation: operation, errno: errno)
        }
    }
}
