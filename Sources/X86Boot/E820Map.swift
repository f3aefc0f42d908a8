import VMCore

/// The type of an E820 memory-map entry, as the BIOS `int 0x15, eax=0xe820`
/// call and `struct boot_e820_entry` report it (ACPI spec, "Address Range Types").
public struct E820Type: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Usable RAM.
    public static let ram = E820Type(rawValue: 1)
    /// Not usable: firmware, MMIO, the low-memory hole.
    public static let reserved = E820Type(rawValue: 2)
    /// ACPI tables; the OS may reclaim it once it has read them.
    public static let acpi = E820Type(rawValue: 3)
    /// ACPI non-volatile storage, kept across sleep states.
    public static let nvs = E820Type(rawValue: 4)
    /// RAM with errors.
    public static let unusable = E820Type(rawValue: 5)
    /// Persistent memory.
    public static let persistentMemory = E820Type(rawValue: 7)

    public var description: String {
        switch rawValue {
        case 1: return "RAM"
        case 2: return "reserved"
        case 3: return "ACPI"
        case 4: return "ACPI NVS"
        case 5: return "unusable"
        case 7: return "persistent memory"
        default: return "type \(rawValue)"
        }
    }
}

/// One range of the guest-physical address space and what it is.
public struct E820Entry: Hashable, Sendable, CustomStringConvertible {
    public var address: UInt64
    public var size: UInt64
    public var type: E820Type

    public init(address: UInt64, size: UInt64, type: E820Type) {
        self.address = address
        self.size = size
        self.type = type
    }

    /// One past the last byte; only meaningful for a validated entry (no wrap-around).
    public var end: UInt64 { address &+ size }

    /// The size of `struct boot_e820_entry`: u64 addr, u64 size, u32 type, packed.
    public static let encodedSize = 20

    /// The entry as `struct boot_e820_entry`, little-endian.
    public var encoded: [UInt8] { littleEndianBytes(address, 8) + littleEndianBytes(size, 8) + littleEndianBytes(type.rawValue, 4) }

    public var description: String { "[\(hex(address))-\(hex(end))) \(type)" }

    fileprivate func validated() throws(BootError) -> E820Entry {
        guard size > 0, address.addingReportingOverflow(size).overflow == false else {
            throw .memoryMapInvalidEntry(address: address, size: size)
        }
        return self
    }

    fileprivate func overlaps(_ other: E820Entry) -> Bool { address < other.end && other.address < end }
}

/// A validated E820 memory map: sorted by address, no empty or overlapping
/// entries, and at most `maximumEntries` of them, so it fits in the zero page
/// and in a PVH memory map alike.
public struct E820Map: Hashable, Sendable {
    /// `E820_MAX_ENTRIES_ZEROPAGE`: the size of `boot_params.e820_table`.
    public static let maximumEntries = 128

    /// The entries in ascending address order.
    public let entries: [E820Entry]

    /// Validates `entries` (in any order) and keeps them sorted by address.
    public init(entries: [E820Entry]) throws(BootError) {
        var sorted: [E820Entry] = []
        for entry in entries { sorted.append(try entry.validated()) }
        sorted.sort { ($0.address, $0.size) < ($1.address, $1.size) }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where previous.overlaps(next) {
            throw .memoryMapOverlap(first: previous.address, second: next.address)
        }
        guard sorted.count <= Self.maximumEntries else {
            throw .memoryMapTooManyEntries(count: sorted.count, maximum: Self.maximumEntries)
        }
        self.entries = sorted
    }

    /// The map of a PC-like guest: its RAM ranges as RAM, the legacy hole
    /// [`LinuxLayout.lowRAMEnd`, 1 MiB) (EBDA, VGA window, ROMs) as reserved,
    /// and `reserved` (ACPI tables, MMIO windows, ...) over both.
    ///
    /// Where a reserved range covers RAM, the RAM entry is cut around it, so the
    /// result never offers the kernel RAM that is in use. Entries in `reserved`
    /// must not overlap each other; adjacent RAM ranges are merged into one entry.
    public init(guestRAM: [(base: GuestAddress, size: UInt64)], reserved: [E820Entry] = []) throws(BootError) {
        var map: [E820Entry] = []
        for range in guestRAM {
            map.append(try E820Entry(address: range.base.rawValue, size: range.size, type: .ram).validated())
        }
        // The caller's ranges must be consistent among themselves before they are painted.
        let explicit = try E820Map(entries: reserved).entries
        let lowHole = E820Entry(
            address: LinuxLayout.lowRAMEnd, size: LinuxLayout.highMemoryStart - LinuxLayout.lowRAMEnd, type: .reserved)
        for range in [lowHole] + explicit {
            map = map.flatMap { $0.removing(range) } + [range]
        }
        try self.init(entries: Self.mergingAdjacent(map))
    }

    /// Joins entries of the same type that touch, after sorting.
    private static func mergingAdjacent(_ entries: [E820Entry]) -> [E820Entry] {
        var merged: [E820Entry] = []
        for entry in entries.sorted(by: { $0.address < $1.address }) {
            if let last = merged.last, last.type == entry.type, last.end == entry.address {
                merged[merged.count - 1].size += entry.size
            } else {
                merged.append(entry)
            }
        }
        return merged
    }

    /// Whether `[address, address + size)` lies inside one RAM entry.
    public func containsRAM(address: UInt64, size: UInt64) -> Bool {
        let (end, overflow) = address.addingReportingOverflow(size)
        guard !overflow else { return false }
        return entries.contains { $0.type == .ram && $0.address <= address && end <= $0.end }
    }

    /// The highest `alignment`-aligned address at which `size` bytes fit inside
    /// one RAM entry, at or above `lowest` and ending at or below `limit`;
    /// `nil` if there is none. `alignment` must be a power of two.
    public func highestRAMPlacement(size: UInt64, alignment: UInt64, lowest: UInt64, limit: UInt64) -> UInt64? {
        for entry in entries.reversed() where entry.type == .ram {
            let top = min(entry.end, limit)
            guard top >= size else { continue }
            let start = (top - size) & ~(alignment - 1)
            if start >= entry.address, start >= lowest { return start }
        }
        return nil
    }

    /// All entries as consecutive `struct boot_e820_entry` records.
    public var encoded: [UInt8] { entries.flatMap(\.encoded) }
}

extension E820Entry {
    /// This entry minus `other`: nothing, itself, or the pieces on either side.
    fileprivate func removing(_ other: E820Entry) -> [E820Entry] {
        guard overlaps(other) else { return [self] }
        var pieces: [E820Entry] = []
        if address < other.address { pieces.append(E820Entry(address: address, size: other.address - address, type: type)) }
        if other.end < end { pieces.append(E820Entry(address: other.end, size: end - other.end, type: type)) }
        return pieces
    }
}

/// The `size` low bytes of `value`, least significant first (x86 byte order).
func littleEndianBytes<T: BinaryInteger>(_ value: T, _ size: Int) -> [UInt8] {
    (0..<size).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
}
