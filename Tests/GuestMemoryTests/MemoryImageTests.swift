import GuestMemory
import Testing
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// Saving, restoring, cloning and resetting guest RAM. Serialized: one test
/// counts this process's descriptors and mappings, and several map gigabytes
/// (MAP_NORESERVE, so only the touched pages cost memory).
@Suite(.serialized) struct MemoryImageTests {
    static let mib: UInt64 = 1 << 20
    static let page = Int(GuestMemory.pageSize)

    /// A PC's layout of 4 GiB: 3 GiB below the 32-bit hole, 1 GiB above 4 GiB.
    static let pcLayout: [(base: GuestAddress, size: UInt64)] = [(GuestAddress(0), 3 << 30), (GuestAddress(4 << 30), 1 << 30)]
    /// Pages of `pcLayout` below the hole: image page `i` is guest page `i` below, `i + 256 Ki` above.
    static let pagesBelowHole = (3 << 30) / page

    /// A small two-region layout for clones and resets; the second region's
    /// page count is not a multiple of 64, so its bitmap has a partial word.
    static let smallLayout: [(base: GuestAddress, size: UInt64)] = [
        (GuestAddress(0), 32 << 20), (GuestAddress(1 << 30), (32 << 20) + 8192),
    ]

    /// A page of bytes that depend on `seed` and are not all zeros (a plain
    /// loop: this runs for thousands of pages in a debug build).
    static func pattern(_ seed: Int) -> [UInt8] {
        var state = UInt64(truncatingIfNeeded: seed) &* 0x9E37_79B9_7F4A_7C15 | 1
        var words = [UInt64](repeating: 0, count: page / 8)
        for i in words.indices {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            words[i] = state
        }
        return words.withUnsafeBytes { Array($0) }
    }

    /// The guest address of image page `index` in `pcLayout`.
    static func pcAddress(ofImagePage index: Int) -> GuestAddress {
        let belowHole = index < pagesBelowHole
        return GuestAddress(UInt64(index * page) + (belowHole ? 0 : 1 << 30))
    }

    /// Image pages that `scatter(into:)` fills: single pages spread over all
    /// 4 GiB and 80 runs of 16 pages, about 10 MiB in all.
    static let scatteredPages: [Int] = {
        var pages = Set((0..<1280).map { $0 * 819 + 3 })
        for run in 0..<80 { pages.formUnion((0..<16).map { run * 13_107 + 400 + $0 }) }
        return pages.sorted()
    }()

    /// What image page `index` holds after `scatter(into:)`: the first is all
    /// zeros but its last byte, which must still count as data.
    static func scatteredContent(_ index: Int) -> [UInt8] {
        guard index == scatteredPages[0] else { return pattern(index) }
        return [UInt8](repeating: 0, count: page - 1) + [1]
    }

    /// Image pages that `scatter(into:)` writes zeros to or only reads: touched, yet holes in an image.
    static let touchedZeroPages = (0..<64).map { $0 * 16_001 + 7 }

    /// Writes `scatteredPages` into `memory` (laid out as `pcLayout`), writes
    /// zeros over `touchedZeroPages` and reads a few untouched pages.
    static func scatter(into memory: borrowing GuestMemory) throws {
        for index in scatteredPages { try memory.write(scatteredContent(index), at: pcAddress(ofImagePage: index)) }
        for index in touchedZeroPages {
            #expect(!scatteredPages.contains(index))
            try memory.write([UInt8](repeating: 0, count: page), at: pcAddress(ofImagePage: index))
            _ = try memory.read(count: page, at: pcAddress(ofImagePage: index + 1))
        }
    }

    /// Image pages in `indices` whose bytes in `file` differ from `expected`.
    static func mismatches(in file: borrowing TemporaryFile, _ indices: [Int], expected: (Int) -> [UInt8]) -> [Int] {
        indices.filter { file.read(count: page, at: UInt64($0 * page)) != expected($0) }
    }

    /// On the disk filesystem, the one snapshots will be written to. Most of
    /// this test's few seconds go to unlinking the file at the end (ext4's
    /// online discard of 1360 extents), not to the save, which takes milliseconds.
    @Test func aSparseImageOfA4GiBGuestHoldsOnlyThePagesWritten() throws {
        let memory = try GuestMemory(regions: Self.pcLayout)
        try Self.scatter(into: memory)
        let file = TemporaryFile()
        let start = ContinuousClock.now
        let statistics = try memory.writeImage(to: file.fd)
        let elapsed = ContinuousClock.now - start
        let expectedBytes = UInt64(Self.scatteredPages.count * Self.page)
        #expect(statistics.pagesWritten == UInt64(Self.scatteredPages.count))
        #expect(statistics.bytesWritten == expectedBytes)
        #expect(statistics.writeCalls == 1280 + 80, "each single page and each run of 16 is one pwrite")
        #expect(statistics.candidatePages < 4 * UInt64(Self.scatteredPages.count), "only touched pages were read")
        let (size, allocated) = file.sizes
        #expect(size == 4 << 30)
        // The filesystem adds a little for its extent tree, nothing like 4 GiB.
        #expect(allocated >= expectedBytes && allocated < expectedBytes + Self.mib)
        print("sparse image of a 4 GiB guest with \(expectedBytes) bytes written: \(allocated) bytes allocated, saved in \(elapsed)")
        #expect(Self.mismatches(in: file, Self.scatteredPages, expected: Self.scatteredContent).isEmpty)
        let zeros = [UInt8](repeating: 0, count: Self.page)
        let holes = Self.touchedZeroPages + Self.touchedZeroPages.map { $0 + 1 } + [Self.pagesBelowHole, (4 << 30) / Self.page - 1]
        #expect(Self.mismatches(in: file, holes) { _ in zeros }.isEmpty)
    }

    /// On tmpfs, where the first test is on a disk filesystem: freeing a
    /// scattered 4 GiB file on this machine's ext4 (mounted with `discard`)
    /// takes seconds, and this test makes two.
    @Test func aRestoredImageIsReadCopyOnWriteAndSavesSparselyAgain() throws {
        let file = TemporaryFile(in: "/dev/shm")
        do {
            let memory = try GuestMemory(regions: Self.pcLayout)
            try Self.scatter(into: memory)
            try memory.writeImage(to: file.fd)
        }
        let start = ContinuousClock.now
        let restored = try GuestMemory(regions: Self.pcLayout, mappingImage: file.fd)
        print("copy-on-write restore of a 4 GiB image in \(ContinuousClock.now - start)")
        #expect(try restored.residentBytes() == 0, "restoring reads nothing")
        // Two writes before anything is read, so that the next save must find
        // every other page in the file alone: one over data, one into a hole.
        let changed = Self.scatteredPages[10]
        let added = 5
        try restored.write(Self.pattern(-1), at: Self.pcAddress(ofImagePage: changed))
        try restored.write(Self.pattern(-2), at: Self.pcAddress(ofImagePage: added))
        #expect(try restored.residentBytes() <= 16 * Self.mib / 1024, "only what was written is resident")
        let expected = { (index: Int) -> [UInt8] in
            index == changed ? Self.pattern(-1) : index == added ? Self.pattern(-2) : Self.scatteredContent(index)
        }

        let second = TemporaryFile(in: "/dev/shm")
        let saveStart = ContinuousClock.now
        let statistics = try restored.writeImage(to: second.fd)
        print("sparse save of the restored 4 GiB guest (pages in the file only) in \(ContinuousClock.now - saveStart)")
        let pages = (Self.scatteredPages + [added]).sorted()
        #expect(statistics.pagesWritten == UInt64(pages.count))
        #expect(statistics.pagesCopied == UInt64(pages.count - 2), "all but the two written went file to file")
        #expect(try restored.residentBytes() <= 16 * Self.mib / 1024, "saving did not fault the file into guest RAM")
        let (size, allocated) = second.sizes
        #expect(size == 4 << 30)
        #expect(allocated >= statistics.bytesWritten && allocated < statistics.bytesWritten + Self.mib)
        #expect(Self.mismatches(in: second, pages, expected: expected).isEmpty)

        // The writes never reached the file the memory is mapped from.
        #expect(Self.mismatches(in: file, Self.scatteredPages, expected: Self.scatteredContent).isEmpty)
        #expect(file.read(count: Self.page, at: UInt64(added * Self.page)) == [UInt8](repeating: 0, count: Self.page))
        let wrong = try pages.filter { try restored.read(count: Self.page, at: Self.pcAddress(ofImagePage: $0)) != expected($0) }
        #expect(wrong.isEmpty)
        #expect(throws: GuestMemoryError.imageIsMappedFile) { try restored.writeImage(to: file.fd) }
        let appending = TemporaryFile(in: "/dev/shm")
        #expect(fcntl(appending.fd, F_SETFL, O_APPEND) == 0)
        #expect(throws: GuestMemoryError.imageFileAppendOnly) { try restored.writeImage(to: appending.fd) }
        #expect(throws: GuestMemoryError.imageStatFailed(errno: EBADF)) { try restored.writeImage(to: -1) }
        #expect(Self.mismatches(in: file, Self.scatteredPages, expected: Self.scatteredContent).isEmpty)
    }

    @Test func aShortImageFileIsRefusedAndNothingStaysMapped() throws {
        let file = TemporaryFile()
        let needed: UInt64 = (64 << 20) + 8192
        #expect(ftruncate(file.fd, off_t(needed) - 4096) == 0)
        let descriptors = ProcessResources.openDescriptors()
        #expect(throws: GuestMemoryError.imageTooSmall(expected: needed, found: needed - 4096)) {
            _ = try GuestMemory(regions: Self.smallLayout, mappingImage: file.fd)
        }
        #expect(ProcessResources.openDescriptors() == descriptors)
        #expect(!ProcessResources.mapLines().contains { $0.hasSuffix(file.path) })
        #expect(throws: GuestMemoryError.invalidRegionSize(100)) {
            _ = try GuestMemory(regions: [(GuestAddress(0), 100)], mappingImage: file.fd)
        }
        #expect(throws: GuestMemoryError.imageStatFailed(errno: EBADF)) {
            _ = try GuestMemory(regions: Self.smallLayout, mappingImage: -1)
        }
        // A file of the exact size (or longer) is fine.
        #expect(ftruncate(file.fd, off_t(needed)) == 0)
        let memory = try GuestMemory(regions: Self.smallLayout, mappingImage: file.fd)
        #expect(try memory.read(count: 4, at: GuestAddress((1 << 30) + (32 << 20) + 4092)) == [0, 0, 0, 0])
    }

    /// Memory laid out as `smallLayout` holding `pattern(page)` in the first
    /// 200 pages of the first region and the first 16 of the second.
    static func smallImageSource() throws -> GuestMemory {
        let memory = try GuestMemory(regions: smallLayout)
        for index in 0..<200 { try memory.write(pattern(index), at: GuestAddress(UInt64(index * page))) }
        for index in 0..<16 { try memory.write(pattern(1000 + index), at: GuestAddress((1 << 30) + UInt64(index * page))) }
        return memory
    }

    @Test func twentyClonesOfOneImageEachSeeTheImageAndTheirOwnWritesOnly() throws {
        let source = try Self.smallImageSource()
        let image = try source.makeImage(name: "swiftvmm-test-clones")
        #expect(image.statistics.pagesWritten == 216)
        #expect(image.allocatedBytes == UInt64(216 * Self.page))
        #expect(image.size == source.size)
        #expect(try source.matches(image))

        let clones = try (0..<20).map { _ in Box(try GuestMemory(cloning: image)) }
        let shared = GuestAddress(0x5000)
        let own = { (clone: Int) in GuestAddress((1 << 30) + UInt64((100 + clone) * Self.page)) }
        for (i, clone) in clones.enumerated() {
            #expect(try clone.value.residentBytes() == 0, "a clone costs nothing until used")
            #expect(try clone.value.matches(image))
            try clone.value.write(Self.pattern(-i), at: shared)
            try clone.value.write(Self.pattern(-100 - i), at: own(i))
        }
        for (i, clone) in clones.enumerated() {
            try Self.expectClone(clone.value, index: i, shared: shared, own: own)
            #expect(try !clone.value.matches(image))
        }
        #expect(try source.read(count: Self.page, at: shared) == Self.pattern(5), "clones do not write through to the source")

        // A clone saves like any memory: the image's pages it has not written
        // are read from the memfd, the ones it wrote from its own RAM.
        let file = TemporaryFile(in: "/dev/shm")
        let saved = try clones[3].value.writeImage(to: file.fd)
        #expect(saved.pagesWritten == 217 && saved.pagesCopied == 215)
        let secondRegion = UInt64(32 << 20)
        let expected: [(offset: UInt64, bytes: [UInt8])] =
            (0..<200).map { (UInt64($0 * Self.page), $0 == 5 ? Self.pattern(-3) : Self.pattern($0)) }
            + (0..<16).map { (secondRegion + UInt64($0 * Self.page), Self.pattern(1000 + $0)) }
            + [(secondRegion + UInt64(103 * Self.page), Self.pattern(-103))]
        #expect(expected.filter { file.read(count: Self.page, at: $0.offset) != $0.bytes }.isEmpty)
        #expect(file.sizes.allocated == 217 * UInt64(Self.page))
        #expect(try source.matches(image))
    }

    /// Clone `index` reads its own writes at `shared` and `own(index)`, the
    /// image's first 200 pages elsewhere, and zeros at the other clones' pages.
    static func expectClone(
        _ memory: borrowing GuestMemory, index i: Int, shared: GuestAddress, own: (Int) -> GuestAddress
    ) throws {
        let zeros = [UInt8](repeating: 0, count: page)
        #expect(try memory.read(count: page, at: shared) == pattern(-i))
        #expect(try memory.read(count: page, at: own(i)) == pattern(-100 - i))
        let others = try (0..<20).filter { try $0 != i && memory.read(count: page, at: own($0)) != zeros }
        #expect(others.isEmpty, "clone \(i) sees the writes of clones \(others)")
        let wrong = try (0..<200).filter {
            try $0 != 5 && memory.read(count: page, at: GuestAddress(UInt64($0 * page))) != pattern($0)
        }
        #expect(wrong.isEmpty, "clone \(i)")
    }

    @Test func resetPagesPutsBackExactlyThePagesNamed() throws {
        let image = try Self.smallImageSource().makeImage(name: "swiftvmm-test-reset")
        let clone = try GuestMemory(cloning: image)
        let low = GuestAddress(0)
        let high = GuestAddress(1 << 30)
        // Runs across word boundaries (63, 64, 65) and pages with and without image data (130, 300).
        let changedLow = [1, 2, 3, 10, 63, 64, 65, 130, 300]
        let changedHigh = [5, 8193]
        let address = { (base: GuestAddress, index: Int) in GuestAddress(base.rawValue + UInt64(index * Self.page)) }
        let original = { (base: GuestAddress, index: Int) -> [UInt8] in
            if base == low && index < 200 { return Self.pattern(index) }
            if base == high && index < 16 { return Self.pattern(1000 + index) }
            return [UInt8](repeating: 0, count: Self.page)
        }
        for index in changedLow { try clone.write(Self.pattern(-index), at: address(low, index)) }
        for index in changedHigh { try clone.write(Self.pattern(-10_000 - index), at: address(high, index)) }

        // Checked before anything is copied: one bad bitmap resets nothing.
        let resetLow = [2, 10, 63, 64, 65, 300, 400]
        let good = DirtyPages(regionBase: low, pages: resetLow)
        #expect(throws: GuestMemoryError.unknownDirtyRegion(GuestAddress(0x1000))) {
            try clone.resetPages([good, DirtyPages(regionBase: GuestAddress(0x1000), bitmap: [1])], from: image)
        }
        #expect(throws: GuestMemoryError.dirtyBitmapOutOfRange(region: low, words: 129, regionPages: 8192)) {
            try clone.resetPages([good, DirtyPages(regionBase: low, bitmap: [UInt64](repeating: 0, count: 129))], from: image)
        }
        // The high region has 8194 pages: page 8194 is bit 2 of word 128, one past its end.
        let pastTheEnd = DirtyPages(regionBase: high, pages: [8194])
        #expect(pastTheEnd.bitmap.count == 129 && pastTheEnd.bitmap[128] == 1 << 2)
        #expect(throws: GuestMemoryError.dirtyBitmapOutOfRange(region: high, words: 129, regionPages: 8194)) {
            try clone.resetPages([good, pastTheEnd], from: image)
        }
        #expect(try clone.read(count: Self.page, at: address(low, 2)) == Self.pattern(-2))

        try clone.resetPages(
            [good, DirtyPages(regionBase: high, pages: [5, 8193])], from: image)
        for index in changedLow {
            let expected = resetLow.contains(index) ? original(low, index) : Self.pattern(-index)
            #expect(try clone.read(count: Self.page, at: address(low, index)) == expected, "page \(index)")
        }
        for index in changedHigh { #expect(try clone.read(count: Self.page, at: address(high, index)) == original(high, index)) }
        #expect(try !clone.matches(image))
        try clone.resetPages([DirtyPages(regionBase: low, bitmap: [0b1010, 0, 1 << 2])], from: image)
        #expect(try clone.matches(image), "pages 1, 3 and 130 were the last changes")

        let otherLayout = try GuestMemory(size: 64 << 20).makeImage()
        #expect(throws: GuestMemoryError.imageLayoutMismatch(region: 0)) { try clone.resetPages([], from: otherLayout) }
        #expect(try !clone.matches(otherLayout))
    }

    @Test func guestMappingsAreLeftOutOfForksAndCoreDumps() throws {
        let anonymous = try GuestMemory(regions: Self.smallLayout)
        let clone = try GuestMemory(cloning: anonymous.makeImage())
        for mapping in anonymous.hostMappings + clone.hostMappings {
            let flags = ProcessResources.mappingFlags(at: mapping.hostAddress)
            #expect(flags.contains("dc"), "MADV_DONTFORK")
            #expect(flags.contains("dd"), "MADV_DONTDUMP")
        }
    }

    @Test func releasedPagesReadAsZerosOrAsTheImageAgain() throws {
        let memory = try GuestMemory(size: 1 << 20)
        for index in 0..<4 { try memory.write(Self.pattern(index), at: GuestAddress(UInt64(index * Self.page))) }
        let resident = try memory.residentBytes()
        #expect(resident >= 4 * UInt64(Self.page))
        try memory.releasePages(at: GuestAddress(0x1000), count: 2)
        #expect(try memory.residentBytes() == resident - 2 * UInt64(Self.page))
        #expect(try memory.read(count: 3 * Self.page, at: GuestAddress(0)) == Self.pattern(0) + [UInt8](repeating: 0, count: 2 * Self.page))
        #expect(try memory.read(count: Self.page, at: GuestAddress(0x3000)) == Self.pattern(3))
        #expect(throws: GuestMemoryError.misalignedAddress(GuestAddress(0x1001))) {
            try memory.releasePages(at: GuestAddress(0x1001), count: 1)
        }
        #expect(throws: GuestMemoryError.outOfBounds(address: GuestAddress(0xff000), length: 0x2000)) {
            try memory.releasePages(at: GuestAddress(0xff000), count: 2)
        }
        #expect(throws: GuestMemoryError.addressOverflow(address: GuestAddress(0), length: .max)) {
            try memory.releasePages(at: GuestAddress(0), count: .max)
        }

        // A clone's released pages are the image's again.
        let clone = try GuestMemory(cloning: memory.makeImage())
        try clone.write(Self.pattern(-7), at: GuestAddress(0))
        try clone.write(Self.pattern(-8), at: GuestAddress(0x8000))
        try clone.releasePages(at: GuestAddress(0), count: 9)
        #expect(try clone.read(count: Self.page, at: GuestAddress(0)) == Self.pattern(0))
        #expect(try clone.read(count: Self.page, at: GuestAddress(0x8000)) == [UInt8](repeating: 0, count: Self.page))
    }

    /// Makes an image, 20 clones and a file restore, checks that they hold
    /// descriptors and mappings while they live, and returns the file's path.
    static func useImages(name: String) throws -> String {
        let file = TemporaryFile()
        let memory = try smallImageSource()
        let image = try memory.makeImage(name: name)
        let clones = try (0..<20).map { _ in Box(try GuestMemory(cloning: image)) }
        for clone in clones { try clone.value.write([1], at: GuestAddress(0)) }
        try memory.writeImage(to: file.fd)
        let restored = try GuestMemory(regions: smallLayout, mappingImage: file.fd)
        try restored.write([1], at: GuestAddress(1 << 30))
        let lines = ProcessResources.mapLines()
        #expect(lines.filter { $0.contains("memfd:" + name) }.count >= 40, "20 clones of 2 regions")
        #expect(lines.filter { $0.hasSuffix(file.path) }.count >= 2)
        let targets = ProcessResources.descriptorTargets()
        #expect(targets.filter { $0.contains("memfd:" + name) }.count == 21, "the image's and one per clone")
        #expect(targets.filter { $0 == file.path }.count == 2, "the caller's and the restored memory's")
        return file.path
    }

    /// Whether `condition` holds within about two seconds: other suites open
    /// and map things concurrently, so a count can take a moment to settle.
    static func eventually(_ condition: () -> Bool) -> Bool {
        for _ in 0..<40 {
            if condition() { return true }
            usleep(50_000)
        }
        return condition()
    }

    @Test func descriptorsAndMappingsComeBackAfterDeinit() throws {
        // Once first, so that whatever the allocator or the runtime keeps
        // for good (an arena, a cached buffer) is already there.
        _ = try Self.useImages(name: "swiftvmm-test-warmup")
        let descriptors = ProcessResources.openDescriptors()
        let mappings = ProcessResources.mapLines().count
        let name = "swiftvmm-test-resources"
        let rounds = 3
        for _ in 0..<rounds {
            let path = try Self.useImages(name: name)
            // Ours, exactly: nothing refers to the memfd or the file any more.
            #expect(!ProcessResources.descriptorTargets().contains { $0.contains("memfd:" + name) || $0 == path })
            #expect(!ProcessResources.mapLines().contains { $0.contains("memfd:" + name) || $0.hasSuffix(path) })
        }
        // And in all, for what has no name to look for (the anonymous regions
        // and the clones' copies): leaked clones would add 40 mappings a
        // round, 120 in all, while other suites running in this process
        // (machines, threads) move the counts by a few meanwhile.
        let slack = 20
        #expect(Self.eventually { ProcessResources.openDescriptors() <= descriptors + slack })
        // (Not under ThreadSanitizer: its shadow mappings moved the count by more than the slack.)
        if !ProcessResources.underThreadSanitizer {
            #expect(Self.eventually { ProcessResources.mapLines().count <= mappings + slack })
        }
    }
}
