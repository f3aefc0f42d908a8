import Testing
import VMCore
import X86Boot

@Suite struct E820MapTests {
    static let mib: UInt64 = 1 << 20
    static let gib: UInt64 = 1 << 30

    @Test func pcLayoutHasTheLowHoleReserved() throws {
        let map = try E820Map(guestRAM: [(GuestAddress(0), 128 * Self.mib)])
        #expect(
            map.entries == [
                E820Entry(address: 0, size: 0x9_fc00, type: .ram),
                E820Entry(address: 0x9_fc00, size: 0x10_0000 - 0x9_fc00, type: .reserved),
                E820Entry(address: 0x10_0000, size: 127 * Self.mib, type: .ram),
            ])
    }

    @Test func reservedRangesCutRAMAndTheLowHole() throws {
        let acpi = E820Entry(address: 0xe_0000, size: 0x2_0000, type: .acpi)
        let nvs = E820Entry(address: 64 * Self.mib, size: 0x1000, type: .nvs)
        let ioapic = E820Entry(address: 0xfec0_0000, size: 0x1000, type: .reserved)
        let map = try E820Map(guestRAM: [(GuestAddress(0), 128 * Self.mib)], reserved: [ioapic, nvs, acpi])
        #expect(
            map.entries == [
                E820Entry(address: 0, size: 0x9_fc00, type: .ram),
                E820Entry(address: 0x9_fc00, size: 0xe_0000 - 0x9_fc00, type: .reserved),
                acpi,
                E820Entry(address: 0x10_0000, size: 63 * Self.mib, type: .ram),
                nvs,
                E820Entry(address: 64 * Self.mib + 0x1000, size: 64 * Self.mib - 0x1000, type: .ram),
                ioapic,
            ])
        #expect(!map.containsRAM(address: 0xe_0000, size: 1))
        #expect(map.containsRAM(address: 0x10_0000, size: 63 * Self.mib))
        #expect(!map.containsRAM(address: 0x10_0000, size: 63 * Self.mib + 1), "RAM on both sides of the NVS page is two entries")
    }

    @Test func ramAboveTheMMIOHoleAndAdjacentRangesMerge() throws {
        let map = try E820Map(guestRAM: [
            (GuestAddress(4 * Self.gib), 2 * Self.gib), (GuestAddress(0), 2 * Self.gib), (GuestAddress(2 * Self.gib), Self.gib),
        ])
        #expect(
            map.entries == [
                E820Entry(address: 0, size: 0x9_fc00, type: .ram),
                E820Entry(address: 0x9_fc00, size: 0x6_0400, type: .reserved),
                E820Entry(address: 0x10_0000, size: 3 * Self.gib - 0x10_0000, type: .ram),
                E820Entry(address: 4 * Self.gib, size: 2 * Self.gib, type: .ram),
            ])
    }

    @Test func entriesAreSortedAndValidated() throws {
        let a = E820Entry(address: 0x1000, size: 0x1000, type: .ram)
        let b = E820Entry(address: 0, size: 0x1000, type: .reserved)
        #expect(try E820Map(entries: [a, b]).entries == [b, a])

        #expect(throws: BootError.memoryMapInvalidEntry(address: 0x5000, size: 0)) {
            _ = try E820Map(entries: [a, E820Entry(address: 0x5000, size: 0, type: .ram)])
        }
        #expect(throws: BootError.memoryMapInvalidEntry(address: .max - 0xfff, size: 0x1001)) {
            _ = try E820Map(entries: [E820Entry(address: .max - 0xfff, size: 0x1001, type: .reserved)])
        }
        #expect(throws: BootError.memoryMapOverlap(first: 0x1000, second: 0x1fff)) {
            _ = try E820Map(entries: [a, E820Entry(address: 0x1fff, size: 1, type: .reserved)])
        }
        // Reserved ranges given to the builder must not overlap each other.
        #expect(throws: BootError.memoryMapOverlap(first: 0xe_0000, second: 0xe_1000)) {
            _ = try E820Map(
                guestRAM: [(GuestAddress(0), 16 * Self.mib)],
                reserved: [E820Entry(address: 0xe_0000, size: 0x2000, type: .acpi), E820Entry(address: 0xe_1000, size: 0x1000, type: .nvs)])
        }
        // So must RAM ranges.
        #expect(throws: BootError.memoryMapOverlap(first: 0x10_0000, second: 0x20_0000)) {
            _ = try E820Map(guestRAM: [(GuestAddress(0x10_0000), 2 * Self.mib), (GuestAddress(0x20_0000), Self.mib)])
        }
    }

    @Test func atMost128Entries() throws {
        let entries = (0..<UInt64(129)).map { E820Entry(address: $0 * 0x2000, size: 0x1000, type: .ram) }
        _ = try E820Map(entries: Array(entries.prefix(128)))
        #expect(throws: BootError.memoryMapTooManyEntries(count: 129, maximum: 128)) { _ = try E820Map(entries: entries) }
        #expect(
            BootError.memoryMapTooManyEntries(count: 129, maximum: 128).description
                == "the E820 map has 129 entries, the zero page holds at most 128")
    }

    @Test func encodesBootE820Entries() throws {
        let map = try E820Map(entries: [E820Entry(address: 0x1_2345_6789, size: 0xabc_def0, type: .acpi)])
        #expect(
            map.encoded == [
                0x89, 0x67, 0x45, 0x23, 0x01, 0, 0, 0,  // addr
                0xf0, 0xde, 0xbc, 0x0a, 0, 0, 0, 0,  // size
                3, 0, 0, 0,  // type
            ])
        #expect(E820Entry.encodedSize == 20)
    }

    @Test func highestPlacementInRAM() throws {
        let map = try E820Map(
            guestRAM: [(GuestAddress(0), 16 * Self.mib)], reserved: [E820Entry(address: 15 * Self.mib, size: 0x1000, type: .acpi)])
        // Above the ACPI page if it fits there, aligned down.
        #expect(map.highestRAMPlacement(size: 0x1800, alignment: 0x1000, lowest: 0, limit: .max) == 16 * Self.mib - 0x2000)
        // Below it if not: 1 MiB - 4 KiB of RAM lie above the page.
        #expect(map.highestRAMPlacement(size: Self.mib, alignment: 0x1000, lowest: 0, limit: .max) == 14 * Self.mib)
        // The limit is the end of the placement.
        #expect(map.highestRAMPlacement(size: 0x1000, alignment: 0x1000, lowest: 0, limit: 0x20_0000) == 0x1f_f000)
        // Nothing at or above `lowest`.
        #expect(map.highestRAMPlacement(size: 2 * Self.mib, alignment: 0x1000, lowest: 14 * Self.mib, limit: .max) == nil)
        #expect(map.highestRAMPlacement(size: 0x10_0000, alignment: 0x1000, lowest: 0, limit: 0x8_0000) == nil, "low RAM too small")
    }
}
