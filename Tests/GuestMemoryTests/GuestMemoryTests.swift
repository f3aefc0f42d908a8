import GuestMemory
import Testing
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct GuestMemoryTests {
    @Test func writesAndReadsBackBytesAndIntegers() throws {
        let memory = try GuestMemory(size: 1 << 20)
        try memory.write([1, 2, 3, 4], at: GuestAddress(0x1000))
        #expect(try memory.read(count: 4, at: GuestAddress(0x1000)) == [1, 2, 3, 4])
        try memory.writeInteger(UInt32(0xdead_beef), at: GuestAddress(0x2001))
        #expect(try memory.read(count: 4, at: GuestAddress(0x2001)) == [0xef, 0xbe, 0xad, 0xde], "little-endian, unaligned")
        #expect(try memory.readInteger(at: GuestAddress(0x2001), as: UInt32.self) == 0xdead_beef)
        try memory.fill(0xa5, count: 3, at: GuestAddress(0x3000))
        #expect(try memory.read(count: 4, at: GuestAddress(0x3000)) == [0xa5, 0xa5, 0xa5, 0])
    }

    /// `swiftvmm run --memory 0xfffffffffffff000` used to trap converting the size to mmap's Int.
    @Test func aSizeMmapCannotTakeIsAMapFailureNotATrap() {
        for size: UInt64 in [1 << 63, 0xffff_ffff_ffff_f000] {
            #expect(throws: GuestMemoryError.mapFailed(size: size, errno: ENOMEM)) { _ = try GuestMemory(size: size) }
        }
        #expect(throws: GuestMemoryError.mapFailed(size: 1 << 63, errno: ENOMEM)) {
            _ = try GuestMemory(regions: [(GuestAddress(0), 1 << 20), (GuestAddress(1 << 32), 1 << 63)])
        }
    }

    @Test func freshMemoryIsZero() throws {
        let memory = try GuestMemory(size: 64 << 10)
        #expect(try memory.read(count: 16, at: GuestAddress(0xfff0)) == Array(repeating: 0, count: 16))
    }

    @Test func accessesPastTheEndThrowAndWriteNothing() throws {
        let memory = try GuestMemory(size: 0x10000)
        #expect(throws: GuestMemoryError.outOfBounds(address: GuestAddress(0xfffe), length: 4)) {
            try memory.write([1, 2, 3, 4], at: GuestAddress(0xfffe))
        }
        #expect(try memory.read(count: 2, at: GuestAddress(0xfffe)) == [0, 0], "a failed write leaves memory as it was")
        #expect(throws: GuestMemoryError.outOfBounds(address: GuestAddress(0x10000), length: 1)) {
            _ = try memory.read(count: 1, at: GuestAddress(0x10000))
        }
        #expect(throws: GuestMemoryError.self) { _ = try memory.readInteger(at: GuestAddress(0xfffd), as: UInt64.self) }
        #expect(try memory.read(count: 0, at: GuestAddress(0x10000)) == [], "an empty access at the very end is in bounds")
    }

    @Test func addressOverflowIsReportedNotWrapped() throws {
        let memory = try GuestMemory(size: 0x10000)
        #expect(throws: GuestMemoryError.addressOverflow(address: GuestAddress(.max - 1), length: 4)) {
            try memory.write([1, 2, 3, 4], at: GuestAddress(.max - 1))
        }
        let containsWrapped = memory.contains(GuestAddress(.max), length: 2)
        #expect(!containsWrapped)
        #expect(throws: GuestMemoryError.self) { try memory.fill(0, count: .max, at: GuestAddress(1)) }
    }

    @Test func regionsMustBePagedAndDisjoint() {
        #expect(throws: GuestMemoryError.invalidRegionSize(0)) { _ = try GuestMemory(size: 0) }
        #expect(throws: GuestMemoryError.invalidRegionSize(4097)) { _ = try GuestMemory(size: 4097) }
        #expect(throws: GuestMemoryError.misalignedRegion(GuestAddress(0x10))) {
            _ = try GuestMemory(regions: [(GuestAddress(0x10), 4096)])
        }
        #expect(throws: GuestMemoryError.overlappingRegions(GuestAddress(0), GuestAddress(0x1000))) {
            _ = try GuestMemory(regions: [(GuestAddress(0x1000), 4096), (GuestAddress(0), 0x2000)])
        }
        #expect(throws: GuestMemoryError.self) { _ = try GuestMemory(regions: [(GuestAddress(.max - 4095), 8192)]) }
    }

    @Test func accessesDoNotSpanTheHoleBetweenRegions() throws {
        let memory = try GuestMemory(regions: [(GuestAddress(0), 0x1000), (GuestAddress(0x10000), 0x1000)])
        #expect(memory.size == 0x2000)
        try memory.write([7], at: GuestAddress(0x10fff))
        #expect(try memory.read(count: 1, at: GuestAddress(0x10fff)) == [7])
        #expect(throws: GuestMemoryError.outOfBounds(address: GuestAddress(0xfff), length: 2)) {
            try memory.write([1, 2], at: GuestAddress(0xfff))
        }
        let containsHole = memory.contains(GuestAddress(0x5000), length: 1)
        #expect(!containsHole)
        #expect(memory.hostMappings.count == 2)
        #expect(memory.hostMappings.map(\.guestBase) == [GuestAddress(0), GuestAddress(0x10000)])
    }

    @Test func largeSparseMemoryCostsOnlyWhatIsTouched() throws {
        // 8 GiB of guest RAM: MAP_NORESERVE means this succeeds on a 24 GiB host
        // even with other tests running, and only touched pages are committed.
        let memory = try GuestMemory(size: 8 << 30)
        try memory.writeInteger(UInt64(42), at: GuestAddress((8 << 30) - 8))
        #expect(try memory.readInteger(at: GuestAddress((8 << 30) - 8), as: UInt64.self) == 42)
    }
}
