import VMCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The guest's RAM: anonymous host mappings, each backing a range of
/// guest-physical addresses.
///
/// This is the only type in swiftvmm that holds a pointer into guest RAM. Every
/// access goes through a bounds- and overflow-checked accessor that copies the
/// bytes in or out and throws `GuestMemoryError` otherwise, so neither a guest,
/// nor a kernel image, nor a configuration file can make the VMM touch host
/// memory outside the guest. It owns its mappings and unmaps them when it ends.
public struct GuestMemory: ~Copyable {
    public static let pageSize: UInt64 = 4096

    /// One mapping. `host` never leaves this type except as an integer for KVM.
    struct Region {
        var base: UInt64
        var size: UInt64
        var host: UnsafeMutableRawPointer
        var end: UInt64 { base + size }
    }

    private let regions: [Region]

    /// RAM from guest-physical 0 up to `size` bytes.
    public init(size: UInt64) throws(GuestMemoryError) {
        try self.init(regions: [(GuestAddress(0), size)])
    }

    /// RAM made of the given `(base, size)` ranges, each page-aligned and non-overlapping.
    public init(regions layout: [(base: GuestAddress, size: UInt64)]) throws(GuestMemoryError) {
        let sorted = layout.sorted { $0.base < $1.base }
        for (i, (base, size)) in sorted.enumerated() {
            guard size > 0, size % Self.pageSize == 0 else { throw .invalidRegionSize(size) }
            guard base.rawValue % Self.pageSize == 0 else { throw .misalignedRegion(base) }
            guard let end = base.adding(size) else { throw .overlappingRegions(base, base) }
            if i + 1 < sorted.count, end > sorted[i + 1].base { throw .overlappingRegions(base, sorted[i + 1].base) }
        }
        var mapped: [Region] = []
        for (base, size) in sorted {
            // mmap takes an Int: a size of 2^63 or more (the user's --memory)
            // is refused the way mmap refuses any size it cannot map.
            guard let length = Int(exactly: size) else {
                for region in mapped { munmap(region.host, Int(region.size)) }
                throw .mapFailed(size: size, errno: ENOMEM)
            }
            // MAP_NORESERVE: guest RAM is committed page by page as the guest
            // touches it, so a 128 MiB guest that uses 1 MiB costs 1 MiB.
            let host = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            guard let host, host != MAP_FAILED else {
                let code = errno
                for region in mapped { munmap(region.host, Int(region.size)) }
                throw .mapFailed(size: size, errno: code)
            }
            mapped.append(Region(base: base.rawValue, size: size, host: host))
        }
        regions = mapped
    }

    deinit {
        for region in regions { munmap(region.host, Int(region.size)) }
    }

    /// The total size of guest RAM in bytes.
    public var size: UInt64 { regions.reduce(0) { $0 + $1.size } }

    /// The guest-physical ranges that have RAM, in ascending order.
    public var ranges: [(base: GuestAddress, size: UInt64)] {
        regions.map { (GuestAddress($0.base), $0.size) }
    }

    /// The host mappings, for registering them with the hypervisor as memory slots.
    ///
    /// The host address is an integer so that no pointer escapes; the caller
    /// must not use it to access memory, only hand it to `KVM_SET_USER_MEMORY_REGION`,
    /// and must remove the slots before this value is destroyed.
    public var hostMappings: [(guestBase: GuestAddress, size: UInt64, hostAddress: UInt)] {
        regions.map { (GuestAddress($0.base), $0.size, UInt(bitPattern: $0.host)) }
    }

    /// Whether `[address, address + length)` lies entirely inside guest RAM.
    public func contains(_ address: GuestAddress, length: UInt64) -> Bool {
        (try? locate(address, length)) != nil
    }

    /// The host pointer for `[address, address + length)`, or an error.
    /// A zero-length access is valid anywhere up to and including a region's end.
    private func locate(_ address: GuestAddress, _ length: UInt64) throws(GuestMemoryError) -> UnsafeMutableRawPointer {
        let (end, overflow) = address.rawValue.addingReportingOverflow(length)
        if overflow { throw .addressOverflow(address: address, length: length) }
        for region in regions where address.rawValue >= region.base && address.rawValue <= region.end {
            if end <= region.end { return region.host + Int(address.rawValue - region.base) }
        }
        throw .outOfBounds(address: address, length: length)
    }

    /// Copies `bytes` into guest RAM at `address`, all or nothing.
    public func write<Bytes: Collection>(_ bytes: Bytes, at address: GuestAddress) throws(GuestMemoryError)
    where Bytes.Element == UInt8 {
        let destination = try locate(address, UInt64(bytes.count))
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
        let source = try locate(address, UInt64(count))
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let base = buffer.baseAddress { base.update(from: source.assumingMemoryBound(to: UInt8.self), count: count) }
            initialized = count
        }
    }

    /// Sets `count` bytes at `address` to `byte`.
    public func fill(_ byte: UInt8, count: UInt64, at address: GuestAddress) throws(GuestMemoryError) {
        let destination = try locate(address, count)
        memset(destination, Int32(byte), Int(count))
    }

    /// Reads a little-endian integer at `address` (x86 byte order, whatever the host's).
    public func readInteger<T: FixedWidthInteger>(at address: GuestAddress, as type: T.Type = T.self) throws(GuestMemoryError) -> T {
        let source = try locate(address, UInt64(MemoryLayout<T>.size))
        return T(littleEndian: source.loadUnaligned(as: T.self))
    }

    /// Writes `value` little-endian at `address`.
    public func writeInteger<T: FixedWidthInteger>(_ value: T, at address: GuestAddress) throws(GuestMemoryError) {
        let destination = try locate(address, UInt64(MemoryLayout<T>.size))
        destination.storeBytes(of: value.littleEndian, as: T.self)
    }
}
