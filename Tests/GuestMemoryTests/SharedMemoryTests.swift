import GuestMemory
import Testing
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// Memfd-backed guest RAM (`init(sharedRegions:)`), the local live upgrade's
/// half in this module: a second mapping of the memfd (as the destination
/// process makes) sees the same bytes, and images, the populated-pages search
/// and the balloon's release work on pages this mapping never touched.
@Suite struct SharedMemoryTests {
    static let layout: [(base: GuestAddress, size: UInt64)] = [(GuestAddress(0), 8 << 20), (GuestAddress(1 << 30), 4 << 20)]
    static let page = GuestMemory.pageSize

    /// The bytes `fd` holds at `offset` (`count` of them).
    static func fileBytes(_ fd: Int32, at offset: UInt64, count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0xee, count: count)
        let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        precondition(got == count)
        return bytes
    }

    /// The bytes of `fd` that hold data (`st_blocks` × 512).
    static func allocated(_ fd: Int32) -> UInt64 {
        var status = stat()
        precondition(fstat(fd, &status) == 0)
        return UInt64(status.st_blocks) * 512
    }

    @Test func aSecondMappingSharesThePages() throws {
        let source = try GuestMemory(sharedRegions: Self.layout)
        let fd = source.sharedDescriptor ?? -1
        #expect(fd >= 0)
        #expect(try GuestMemory(regions: Self.layout).sharedDescriptor == nil)
        let destination = try GuestMemory(regions: Self.layout, sharingMemfd: fd)
        try source.write(Array("from the source".utf8), at: GuestAddress(0x1000))
        #expect(try destination.read(count: 15, at: GuestAddress(0x1000)) == Array("from the source".utf8))
        try destination.writeInteger(UInt64(0x1122_3344_5566_7788), at: GuestAddress((1 << 30) + 0x2000))
        #expect(try source.readInteger(at: GuestAddress((1 << 30) + 0x2000), as: UInt64.self) == 0x1122_3344_5566_7788)
        // The second region lies after the first in the memfd.
        #expect(Self.fileBytes(fd, at: (8 << 20) + 0x2000, count: 8) == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
    }

    @Test func populatedPagesAndImagesSeePagesWrittenThroughAnotherMapping() throws {
        let source = try GuestMemory(sharedRegions: Self.layout)
        let other = try GuestMemory(regions: Self.layout, sharingMemfd: source.sharedDescriptor ?? -1)
        // Written only through the other mapping: in no page table of `source`'s mapping.
        try other.write([UInt8](repeating: 0x5a, count: Int(Self.page)), at: GuestAddress(0x7000))
        try other.write([0x42], at: GuestAddress((1 << 30) + 3 * Self.page))
        let populated = try source.populatedPages()
        #expect(populated.count == 2)
        #expect(populated[0].bitmap[0] & (1 << 7) != 0)
        #expect(populated[1].bitmap[0] & (1 << 3) != 0)
        let image = try source.makeImage()
        #expect(image.statistics.pagesWritten == 2)
        let clone = try GuestMemory(cloning: image)
        #expect(try clone.read(count: 4, at: GuestAddress(0x7000)) == [0x5a, 0x5a, 0x5a, 0x5a])
        #expect(try clone.read(count: 1, at: GuestAddress((1 << 30) + 3 * Self.page)) == [0x42])
        #expect(try source.matches(image))
        try source.write([0x43], at: GuestAddress((1 << 30) + 3 * Self.page))
        #expect(try !source.matches(image))
    }

    @Test func releasingPagesPunchesAHoleInTheMemfd() throws {
        let memory = try GuestMemory(sharedRegions: Self.layout)
        let fd = memory.sharedDescriptor ?? -1
        #expect(fd >= 0)
        try memory.fill(0x77, count: 16 * Self.page, at: GuestAddress(0x10000))
        let before = Self.allocated(fd)
        #expect(before >= 16 * Self.page)
        // MADV_DONTNEED alone would leave shmem pages in the memfd; the balloon's release must free them.
        try memory.view.releasePages(at: GuestAddress(0x10000), count: 8)
        try memory.releasePages(at: GuestAddress(0x18000), count: 4)
        #expect(Self.allocated(fd) <= before - 12 * Self.page)
        #expect(try memory.read(count: 2, at: GuestAddress(0x10000)) == [0, 0])
        #expect(try memory.read(count: 1, at: GuestAddress(0x1bfff)) == [0])
        #expect(try memory.read(count: 1, at: GuestAddress(0x1c000)) == [0x77])
        #expect(Self.fileBytes(fd, at: 0x10000, count: 1) == [0])
    }

    @Test func aMemfdOfAnotherSizeOrUnsealedIsRefused() throws {
        let source = try GuestMemory(sharedRegions: Self.layout)
        let fd = source.sharedDescriptor ?? -1
        #expect(fd >= 0)
        #expect(throws: GuestMemoryError.sharedMemorySizeMismatch(expected: 8 << 20, found: 12 << 20)) {
            _ = try GuestMemory(regions: [(GuestAddress(0), 8 << 20)], sharingMemfd: fd)
        }
        // A plain file is no memfd: F_GET_SEALS fails, so it is refused before any mapping.
        var template = Array("/tmp/swiftvmm-shared-XXXXXX".utf8CString)
        let plain = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        defer {
            close(plain)
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        }
        #expect(ftruncate(plain, 12 << 20) == 0)
        #expect(throws: GuestMemoryError.sharedMemoryNotSealed(seals: -1)) {
            _ = try GuestMemory(regions: Self.layout, sharingMemfd: plain)
        }
    }
}
