import GuestMemory
import Testing
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// Timings of saving, restoring, cloning and resetting, printed for a human.
/// Opt-in (`SWIFTVMM_BENCH=1 swift test -c release --filter MemoryImageBenchmark`):
/// it writes 1 GiB of guest RAM and keeps a 1 GiB image on /dev/shm and in a memfd.
@Suite(.serialized, .enabled(if: getenv("SWIFTVMM_BENCH") != nil)) struct MemoryImageBenchmark {
    static let size: UInt64 = 1 << 30
    static let layout: [(base: GuestAddress, size: UInt64)] = [(GuestAddress(0), 768 << 20), (GuestAddress(4 << 30), 256 << 20)]

    static func time<T: ~Copyable>(_ what: String, _ body: () throws -> T) rethrows -> T {
        let start = ContinuousClock.now
        let result = try body()
        print("\(what): \(ContinuousClock.now - start)")
        return result
    }

    @Test func saveRestoreCloneAndResetOneGiB() throws {
        let memory = try GuestMemory(regions: Self.layout)
        // Every page non-zero: the worst case for a save.
        for offset in stride(from: 0, to: 768 << 20, by: 4096) {
            try memory.writeInteger(UInt64(offset) | 1, at: GuestAddress(UInt64(offset)))
        }
        for offset in stride(from: 0, to: 256 << 20, by: 4096) {
            try memory.writeInteger(UInt64(offset) | 1, at: GuestAddress((4 << 30) + UInt64(offset)))
        }
        let file = TemporaryFile(in: "/dev/shm")
        let saved = try Self.time("writeImage, 1 GiB all non-zero") { try memory.writeImage(to: file.fd) }
        print("  \(saved.pagesWritten) pages in \(saved.writeCalls) pwrite calls")
        let restored = try Self.time("restore (mmap) 1 GiB") { try GuestMemory(regions: Self.layout, mappingImage: file.fd) }
        let again = TemporaryFile(in: "/dev/shm")
        _ = try Self.time("writeImage of the untouched restore (extents only)") { try restored.writeImage(to: again.fd) }
        let image = try Self.time("makeImage, 1 GiB") { try memory.makeImage(name: "swiftvmm-bench") }
        let clones = try Self.time("20 clones") { try (0..<20).map { _ in Box(try GuestMemory(cloning: image)) } }
        let clone = clones[0]
        // A test that dirties 10% of its guest: every tenth page.
        let dirty = Array(stride(from: 0, to: (768 << 20) / 4096, by: 10))
        for page in dirty { try clone.value.writeInteger(UInt64(0), at: GuestAddress(UInt64(page * 4096))) }
        print("  clone resident after dirtying \(dirty.count) pages: \(try clone.value.residentBytes()) bytes")
        try Self.time("resetPages, \(dirty.count) scattered pages") {
            try clone.value.resetPages([DirtyPages(regionBase: GuestAddress(0), pages: dirty)], from: image)
        }
        let same = try Self.time("matches, 1 GiB") { try clone.value.matches(image) }
        #expect(same)
    }
}
