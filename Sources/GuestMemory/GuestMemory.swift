import VMCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The guest's RAM: host mappings, each backing a range of guest-physical
/// addresses, either anonymous or mapped copy-on-write from an image file.
///
/// This is the only type in swiftvmm that holds a pointer into guest RAM. Every
/// access goes through a bounds- and overflow-checked accessor that copies the
/// bytes in or out and throws `GuestMemoryError` otherwise, so neither a guest,
/// nor a kernel image, nor a configuration file can make the VMM touch host
/// memory outside the guest. It owns its mappings and unmaps them when it ends.
///
/// An image file is the regions concatenated in ascending guest-address order:
/// region `i` starts at the sum of the sizes of the regions before it. Pages
/// that are all zeros are holes, so an image costs what the guest touched.
/// `writeImage(to:)` saves one, `init(regions:mappingImage:)` restores one
/// without reading it, and `makeImage()` with `init(cloning:)` and
/// `resetPages(_:from:)` keep one in memory for many copies at once.
public struct GuestMemory: ~Copyable {
    public static let pageSize: UInt64 = 4096
    /// The most bytes one `pwrite` of `writeImage(to:)` carries: runs of
    /// non-zero pages go out together, in pieces no larger than this.
    static let largestWrite = 64 << 20
    /// The bytes `matches(_:)` compares per `pread`.
    static let compareChunk = 1 << 20

    /// One mapping. `host` never leaves this type except as an integer for KVM.
    struct Region {
        var base: UInt64
        var size: UInt64
        var host: UnsafeMutableRawPointer
        /// Where the region lives in an image file.
        var fileOffset: UInt64
        var end: UInt64 { base + size }
        var pageCount: Int { Int(size / GuestMemory.pageSize) }
    }

    /// The mappings, shared with every `GuestMemoryView` of this memory.
    let mapped: MappedRegions
    private var regions: [Region] { mapped.regions }
    /// The pages written through this type, once `trackHostWrites()` starts it.
    private var hostWrites: HostWriteLog { mapped.hostWrites }
    /// The file the regions are mapped from, on a descriptor of its own
    /// (closed in `deinit`), or -1 for anonymous memory. `writeImage(to:)`
    /// reads its data extents: pages never touched since the restore exist
    /// only there, not in this process's page tables.
    let backingFile: Int32

    /// RAM from guest-physical 0 up to `size` bytes.
    public init(size: UInt64) throws(GuestMemoryError) {
        try self.init(regions: [(GuestAddress(0), size)])
    }

    /// RAM made of the given `(base, size)` ranges, each page-aligned and non-overlapping.
    /// The corresponding C function is `mmap` (`MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE`).
    public init(regions layout: [(base: GuestAddress, size: UInt64)]) throws(GuestMemoryError) {
        mapped = MappedRegions(try Self.map(Self.validated(layout), file: -1))
        backingFile = -1
    }

    /// RAM with the given layout in a memfd of its own, mapped shared: the
    /// same pages as private RAM to the guest and the VMM, but another
    /// process given the memfd (`sharedDescriptor`, over `SCM_RIGHTS`) maps
    /// the very same pages, which is how a local live upgrade hands RAM over
    /// without copying it. The memfd is sealed against shrinking and growing,
    /// so no holder can cut the mapping short under another.
    /// The corresponding C functions are `memfd_create` and `mmap` (`MAP_SHARED | MAP_NORESERVE`).
    public init(sharedRegions layout: [(base: GuestAddress, size: UInt64)]) throws(GuestMemoryError) {
        let sorted = try Self.validated(layout)
        let total = sorted.reduce(0) { $0 + $1.size }
        let fd = LinuxABI.memfdCreate(name: "swiftvmm-guest-ram")
        guard fd >= 0 else { throw .memfdFailed(errno: errno) }
        guard let length = off_t(exactly: total), ftruncate(fd, length) == 0 else {
            let code = errno
            close(fd)
            throw .mapFailed(size: total, errno: code)
        }
        guard fcntl(fd, LinuxABI.addSeals, LinuxABI.sealShrink | LinuxABI.sealGrow) == 0 else {
            let code = errno
            close(fd)
            throw .sealFailed(errno: code)
        }
        let regions: [Region]
        do { regions = try Self.map(sorted, file: fd, shared: true) } catch {
            close(fd)
            throw error
        }
        mapped = MappedRegions(regions, sharedFile: fd)
        backingFile = -1
    }

    /// RAM with the given layout mapped shared from `fd`, a memfd another
    /// process made with `init(sharedRegions:)` and passed here: the pages
    /// are that process's, not copies. The memfd must hold exactly the
    /// layout's size and be sealed against shrinking (else the other side
    /// could truncate it and fault this process on its next access).
    /// Nothing is written to it here; `fd` stays the caller's (a duplicate is kept).
    /// The corresponding C function is `mmap` (`MAP_SHARED` on `fd`).
    public init(regions layout: [(base: GuestAddress, size: UInt64)], sharingMemfd fd: Int32) throws(GuestMemoryError) {
        let sorted = try Self.validated(layout)
        let needed = sorted.reduce(0) { $0 + $1.size }
        let seals = fcntl(fd, LinuxABI.getSeals)
        guard seals >= 0, seals & LinuxABI.sealShrink != 0, seals & LinuxABI.sealWrite == 0 else {
            throw .sharedMemoryNotSealed(seals: seals)
        }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw .imageStatFailed(errno: errno) }
        let found = UInt64(max(0, status.st_size))
        guard found == needed else { throw .sharedMemorySizeMismatch(expected: needed, found: found) }
        // fcntl, not a reopen through /proc: the migration thread's sandbox allows no open.
        let kept = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard kept >= 0 else { throw .imageDescriptorFailed(errno: errno) }
        let regions: [Region]
        do { regions = try Self.map(sorted, file: kept, shared: true) } catch {
            close(kept)
            throw error
        }
        mapped = MappedRegions(regions, sharedFile: kept)
        backingFile = -1
    }

    /// The memfd this RAM is a shared mapping of (`init(sharedRegions:)`), for
    /// passing to another process; nil for private RAM. It stays this memory's:
    /// the caller must not close it.
    public var sharedDescriptor: Int32? { mapped.sharedFile >= 0 ? mapped.sharedFile : nil }

    /// RAM with the given layout, restored from an image file without reading
    /// it: each region is mapped copy-on-write from the file at its offset, so
    /// restoring costs the same for 64 MiB as for 64 GiB, and the pages come
    /// in from the file as the guest touches them.
    ///
    /// Writes land in private copies and never reach the file. The file must
    /// hold at least the layout's total size (it may be longer), and must not
    /// change while this memory exists: pages not yet written would show the
    /// change. The memory keeps a descriptor of the file of its own; `fd`
    /// stays the caller's, and its file position is not used.
    /// The corresponding C function is `mmap` (`MAP_PRIVATE | MAP_NORESERVE` on `fd`).
    public init(regions layout: [(base: GuestAddress, size: UInt64)], mappingImage fd: Int32) throws(GuestMemoryError) {
        let sorted = try Self.validated(layout)
        let needed = sorted.reduce(0) { $0 + $1.size }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw .imageStatFailed(errno: errno) }
        let found = UInt64(max(0, status.st_size))
        // Mapping past the end of a file is allowed, but touching the page then
        // raises SIGBUS in the VMM; refuse here, before anything is mapped.
        guard found >= needed else { throw .imageTooSmall(expected: needed, found: found) }
        let kept = try Self.keepDescriptor(of: fd)
        let mapped: [Region]
        do { mapped = try Self.map(sorted, file: kept) } catch {
            close(kept)
            throw error
        }
        self.mapped = MappedRegions(mapped)
        backingFile = kept
    }

    /// A private copy-on-write copy of `image`: the clone reads the image's
    /// pages until it writes them, and costs only what it writes. Any number
    /// of clones of one image can exist at once; none sees another's writes.
    /// The corresponding C function is `mmap` (`MAP_PRIVATE` on the image's memfd).
    public init(cloning image: MemoryImage) throws(GuestMemoryError) {
        try self.init(regions: image.ranges, mappingImage: image.fd)
    }

    /// The mappings go when the last view of them does (`MappedRegions`).
    deinit {
        if backingFile >= 0 { close(backingFile) }
    }

    /// The layout sorted by base, once each range is checked.
    private static func validated(
        _ layout: [(base: GuestAddress, size: UInt64)]
    ) throws(GuestMemoryError) -> [(base: GuestAddress, size: UInt64)] {
        let sorted = layout.sorted { $0.base < $1.base }
        for (i, (base, size)) in sorted.enumerated() {
            guard size > 0, size % Self.pageSize == 0 else { throw .invalidRegionSize(size) }
            guard base.rawValue % Self.pageSize == 0 else { throw .misalignedRegion(base) }
            guard let end = base.adding(size) else { throw .overlappingRegions(base, base) }
            if i + 1 < sorted.count, end > sorted[i + 1].base { throw .overlappingRegions(base, sorted[i + 1].base) }
        }
        return sorted
    }

    /// Maps `layout` (sorted, validated) anonymously when `file` is -1, else
    /// privately from `file` at the image-file offsets. All or nothing.
    private static func map(_ layout: [(base: GuestAddress, size: UInt64)], file: Int32, shared: Bool = false) throws(GuestMemoryError)
        -> [Region]
    {
        var mapped: [Region] = []
        func unmapAll() { for region in mapped { munmap(region.host, Int(region.size)) } }
        var fileOffset: UInt64 = 0
        for (base, size) in layout {
            // mmap takes an Int: a size of 2^63 or more (the user's --memory)
            // is refused the way mmap refuses any size it cannot map.
            guard let length = Int(exactly: size), let offset = off_t(exactly: fileOffset) else {
                unmapAll()
                throw .mapFailed(size: size, errno: ENOMEM)
            }
            // MAP_NORESERVE: guest RAM is committed page by page as the guest
            // touches it, so a 128 MiB guest that uses 1 MiB costs 1 MiB. The
            // same holds for a private file mapping, whose copies are anonymous.
            let host =
                file < 0
                ? mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
                : mmap(nil, length, PROT_READ | PROT_WRITE, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_NORESERVE, file, offset)
            guard let host, host != MAP_FAILED else {
                let code = errno
                unmapAll()
                throw .mapFailed(size: size, errno: code)
            }
            mapped.append(Region(base: base.rawValue, size: size, host: host, fileOffset: fileOffset))
            // A forked child (a helper process, a test's subprocess) must not
            // inherit guest RAM: copying the page tables is slow, and copy-on-write
            // after fork would give the VMM new pages behind KVM's back. A core
            // dump of the VMM must not carry gigabytes of (possibly secret) guest data.
            for (advice, name) in [(MADV_DONTFORK, "MADV_DONTFORK"), (MADV_DONTDUMP, "MADV_DONTDUMP")]
            where madvise(host, length, advice) != 0 {
                let code = errno
                unmapAll()
                throw .adviseFailed(advice: name, errno: code)
            }
            fileOffset += size
        }
        return mapped
    }

    /// A descriptor of the same file with a file position of its own, so that
    /// the extent scan's `lseek` never moves the caller's; a `dup` where
    /// `/proc` cannot reopen it. Close-on-exec either way.
    private static func keepDescriptor(of fd: Int32) throws(GuestMemoryError) -> Int32 {
        let reopened = open("/proc/self/fd/\(fd)", O_RDONLY | O_CLOEXEC)
        if reopened >= 0 { return reopened }
        let duplicate = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard duplicate >= 0 else { throw .imageDescriptorFailed(errno: errno) }
        return duplicate
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
        view.contains(address, length: length)
    }

    /// The host pointer for `[address, address + length)`, or an error.
    private func locate(_ address: GuestAddress, _ length: UInt64, writing: Bool = false) throws(GuestMemoryError)
        -> UnsafeMutableRawPointer
    {
        try mapped.locate(address, length, writing: writing)
    }

    /// A copyable handle on this RAM for the VMM's other threads (device
    /// back ends): the same accessors, and the mappings stay until the last
    /// handle and this memory are gone.
    public var view: GuestMemoryView { GuestMemoryView(mapped) }

    /// Starts logging the pages written through this type (`write`, `fill`,
    /// `writeInteger`), which KVM's dirty log does not see; `takeHostWrittenPages()` reads the log.
    public func trackHostWrites() {
        hostWrites.start(pageCounts: regions.map(\.pageCount))
    }

    /// The pages written through this type since the last call (or since
    /// `trackHostWrites()`), one bitmap per region; empty when not tracking.
    public func takeHostWrittenPages() -> [DirtyPages] {
        guard hostWrites.isEnabled else { return [] }
        return zip(regions, hostWrites.take()).map { DirtyPages(regionBase: GuestAddress($0.base), bitmap: $1) }
    }

    /// Copies `bytes` into guest RAM at `address`, all or nothing.
    public func write<Bytes: Collection>(_ bytes: Bytes, at address: GuestAddress) throws(GuestMemoryError)
    where Bytes.Element == UInt8 {
        try view.write(bytes, at: address)
    }

    /// Copies `count` bytes out of guest RAM at `address`.
    public func read(count: Int, at address: GuestAddress) throws(GuestMemoryError) -> [UInt8] {
        try view.read(count: count, at: address)
    }

    /// Sets `count` bytes at `address` to `byte`.
    public func fill(_ byte: UInt8, count: UInt64, at address: GuestAddress) throws(GuestMemoryError) {
        try view.fill(byte, count: count, at: address)
    }

    /// Reads a little-endian integer at `address` (x86 byte order, whatever the host's).
    public func readInteger<T: FixedWidthInteger>(at address: GuestAddress, as type: T.Type = T.self) throws(GuestMemoryError) -> T {
        try view.readInteger(at: address, as: type)
    }

    /// Writes `value` little-endian at `address`.
    public func writeInteger<T: FixedWidthInteger>(_ value: T, at address: GuestAddress) throws(GuestMemoryError) {
        try view.writeInteger(value, at: address)
    }

    // MARK: Images, clones, resets

    /// Saves RAM to `fd` as a sparse image file (see the type's documentation)
    /// and returns what it wrote. The file's previous contents are discarded.
    ///
    /// Only pages that can hold data are read: those present or swapped in
    /// this process (from `/proc/self/pagemap`). Of these, pages of zeros are
    /// skipped and stay holes; runs of the others go out in large writes. So a
    /// 4 GiB guest that touched 10 MiB costs about 10 MiB of disk and reads
    /// about 10 MiB of RAM. For memory mapped from an image, the image's data
    /// extents (`SEEK_DATA`) that were not written since are read from the
    /// image with `pread` rather than faulted into guest RAM.
    ///
    /// The guest must not run meanwhile (its vCPUs stopped), or the image
    /// mixes pages from different moments. `fd` must be open for writing,
    /// without `O_APPEND`, and not be a file that any memory is mapped from:
    /// this memory's own is refused, another's would lose its pages to the
    /// truncation. The corresponding C function is `pwrite`.
    @discardableResult
    public func writeImage(to fd: Int32) throws(GuestMemoryError) -> MemoryImageStatistics {
        var theirs = stat()
        guard fstat(fd, &theirs) == 0 else { throw .imageStatFailed(errno: errno) }
        var ours = stat()
        for file in [backingFile, mapped.sharedFile] where file >= 0 {
            if fstat(file, &ours) == 0, ours.st_dev == theirs.st_dev, ours.st_ino == theirs.st_ino { throw .imageIsMappedFile }
        }
        // With O_APPEND, Linux's pwrite ignores the offset and appends: every
        // page would land at the end of the file.
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { throw .imageStatFailed(errno: errno) }
        if flags & O_APPEND != 0 { throw .imageFileAppendOnly }
        let total = size
        guard let length = off_t(exactly: total) else { throw .imageTruncateFailed(size: total, errno: EFBIG) }
        // Truncating to zero first drops whatever the file held, so that the
        // pages skipped as zeros read back as zeros rather than as old data.
        guard ftruncate(fd, 0) == 0, ftruncate(fd, length) == 0 else {
            throw .imageTruncateFailed(size: total, errno: errno)
        }
        let pagemap = try PageMap()
        let pageBytes = Int(Self.pageSize)
        var statistics = MemoryImageStatistics()
        for region in regions {
            // Pages in this process's page tables or in swap are read from RAM,
            // except those that are still the backing file's own pages.
            var inMemory = PageBitmap(count: region.pageCount)
            try pagemap.markMapped(
                address: UInt(bitPattern: region.host), into: &inMemory, includingSwapped: true, excludingFilePages: backingFile >= 0)
            // Shared RAM's pages are the memfd's: those this process never
            // touched (another process wrote them) are in no page table here.
            if mapped.sharedFile >= 0 { try FileExtents.markData(of: mapped.sharedFile, start: region.fileOffset, into: &inMemory) }
            // The rest of the backing file's data has not been written since
            // the restore (or was released back to it), so it is the file's:
            // read it from the file, not through the mapping, which would
            // fault it into guest RAM (and, on tmpfs, fill the file's holes).
            var fileOnly = PageBitmap(count: region.pageCount)
            if backingFile >= 0 {
                try FileExtents.markData(of: backingFile, start: region.fileOffset, into: &fileOnly)
                fileOnly.subtract(inMemory)
            }
            statistics.candidatePages += UInt64(inMemory.population + fileOnly.population)
            for run in fileOnly.runs {
                try copyNonZeroPages(run, of: region, to: fd, statistics: &statistics)
            }
            for run in inMemory.runs {
                var pending: Int?
                func flush(upTo end: Int) throws(GuestMemoryError) {
                    guard let start = pending else { return }
                    let count = (end - start) * pageBytes
                    let offset = region.fileOffset + UInt64(start * pageBytes)
                    try Self.writeAll(fd, from: region.host + start * pageBytes, count: count, at: offset)
                    statistics.pagesWritten += UInt64(end - start)
                    statistics.bytesWritten += UInt64(count)
                    statistics.writeCalls += 1
                    pending = nil
                }
                for page in run {
                    if Self.isZero(region.host + page * pageBytes) {
                        try flush(upTo: page)
                        continue
                    }
                    if let start = pending, (page - start) * pageBytes == Self.largestWrite { try flush(upTo: page) }
                    if pending == nil { pending = page }
                }
                try flush(upTo: run.upperBound)
            }
        }
        return statistics
    }

    /// Writes only `pages` of RAM to `fd`, each at its offset in a full image,
    /// the rest of the file a hole: a diff image, which laid over the image
    /// it follows gives RAM as it is now (Firecracker's `Diff` snapshot).
    ///
    /// The guest must not run meanwhile; `fd` is as for `writeImage(to:)`.
    /// The corresponding C function is `pwrite`.
    @discardableResult
    public func writePages(_ pages: [DirtyPages], to fd: Int32) throws(GuestMemoryError) -> MemoryImageStatistics {
        var plan: [(region: Region, pages: PageBitmap)] = []
        for dirty in pages {
            guard let region = regions.first(where: { $0.base == dirty.regionBase.rawValue }) else {
                throw .unknownDirtyRegion(dirty.regionBase)
            }
            guard let bitmap = PageBitmap(words: dirty.bitmap, count: region.pageCount) else {
                throw .dirtyBitmapOutOfRange(region: dirty.regionBase, words: dirty.bitmap.count, regionPages: UInt64(region.pageCount))
            }
            plan.append((region, bitmap))
        }
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { throw .imageStatFailed(errno: errno) }
        if flags & O_APPEND != 0 { throw .imageFileAppendOnly }
        guard let length = off_t(exactly: size), ftruncate(fd, 0) == 0, ftruncate(fd, length) == 0 else {
            throw .imageTruncateFailed(size: size, errno: errno)
        }
        let pageBytes = Int(Self.pageSize)
        var statistics = MemoryImageStatistics()
        for (region, bitmap) in plan {
            statistics.candidatePages += UInt64(bitmap.population)
            for run in bitmap.runs {
                let count = run.count * pageBytes
                try Self.writeAll(
                    fd, from: region.host + run.lowerBound * pageBytes, count: count,
                    at: region.fileOffset + UInt64(run.lowerBound * pageBytes))
                statistics.pagesWritten += UInt64(run.count)
                statistics.bytesWritten += UInt64(count)
                statistics.writeCalls += 1
            }
        }
        return statistics
    }

    /// An in-memory image of RAM, for giving many tests (or guests) a fresh
    /// copy each: a sparse copy in a `memfd` named `name` (the name shows in
    /// `/proc/<pid>/maps`), sealed so that it can never change.
    /// The corresponding C functions are `memfd_create` and `fcntl` (`F_ADD_SEALS`).
    public func makeImage(name: String = "swiftvmm-guest-ram") throws(GuestMemoryError) -> MemoryImage {
        let fd = LinuxABI.memfdCreate(name: name)
        guard fd >= 0 else { throw .memfdFailed(errno: errno) }
        do throws(GuestMemoryError) {
            let statistics = try writeImage(to: fd)
            // F_SEAL_WRITE only refuses shared writable mappings and writes;
            // clones' private mappings are still allowed, which is the point.
            let seals = LinuxABI.sealWrite | LinuxABI.sealShrink | LinuxABI.sealGrow | LinuxABI.sealSeal
            guard fcntl(fd, LinuxABI.addSeals, seals) == 0 else { throw .sealFailed(errno: errno) }
            return MemoryImage(fd: fd, ranges: ranges, statistics: statistics)
        } catch {
            close(fd)
            throw error
        }
    }

    /// Copies exactly the pages named in `pages` back from `image`, leaving
    /// every other page as it is: after a test, the pages KVM's dirty log
    /// names are the ones to put back. The layout must be the image's.
    /// Every bitmap is checked before any page is copied.
    ///
    /// The guest must not run meanwhile. These copies are the VMM's writes,
    /// which KVM's dirty log does not record, so a log read after the reset
    /// names only what the guest writes next.
    /// The corresponding C function is `pread` (from the image's memfd).
    public func resetPages(_ pages: [DirtyPages], from image: MemoryImage) throws(GuestMemoryError) {
        if let region = image.firstLayoutDifference(from: ranges) { throw .imageLayoutMismatch(region: region) }
        var plan: [(region: Region, pages: PageBitmap)] = []
        for dirty in pages {
            guard let region = regions.first(where: { $0.base == dirty.regionBase.rawValue }) else {
                throw .unknownDirtyRegion(dirty.regionBase)
            }
            guard let bitmap = PageBitmap(words: dirty.bitmap, count: region.pageCount) else {
                throw .dirtyBitmapOutOfRange(region: dirty.regionBase, words: dirty.bitmap.count, regionPages: UInt64(region.pageCount))
            }
            plan.append((region, bitmap))
        }
        let pageBytes = Int(Self.pageSize)
        for (region, bitmap) in plan {
            for run in bitmap.runs {
                let offset = region.fileOffset + UInt64(run.lowerBound * pageBytes)
                try Self.readAll(image.fd, into: region.host + run.lowerBound * pageBytes, count: run.count * pageBytes, at: offset)
            }
        }
    }

    /// Whether every byte of RAM equals `image`'s (and the layouts are the
    /// same). Like `writeImage(to:)`, it compares only pages that could hold
    /// data on either side, so it is cheap on a large, mostly untouched guest.
    /// The corresponding C function is `pread` (from the image's memfd).
    public func matches(_ image: MemoryImage) throws(GuestMemoryError) -> Bool {
        if image.firstLayoutDifference(from: ranges) != nil { return false }
        let pagemap = try PageMap()
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.compareChunk, alignment: Int(Self.pageSize))
        defer { buffer.deallocate() }
        let pageBytes = Int(Self.pageSize)
        for region in regions {
            for run in try candidatePages(of: region, pagemap: pagemap, alsoDataIn: image.fd).runs {
                var byte = run.lowerBound * pageBytes
                while byte < run.upperBound * pageBytes {
                    let count = min(Self.compareChunk, run.upperBound * pageBytes - byte)
                    try Self.readAll(image.fd, into: buffer, count: count, at: region.fileOffset + UInt64(byte))
                    if memcmp(buffer, region.host + byte, count) != 0 { return false }
                    byte += count
                }
            }
        }
        return true
    }

    /// Gives `count` pages at `address` (page-aligned, inside one region) back
    /// to the host. Anonymous memory then reads as zeros; memory restored from
    /// an image (or cloned) reads as the image's content again, since
    /// `MADV_DONTNEED` drops the private copies of a private file mapping.
    /// Shared (memfd) RAM reads as zeros, its pages freed by a hole in the memfd.
    /// For a balloon device; the guest must not expect the old contents.
    /// The corresponding C function is `madvise` (`MADV_DONTNEED`), or `fallocate` (`FALLOC_FL_PUNCH_HOLE`).
    public func releasePages(at address: GuestAddress, count: UInt64) throws(GuestMemoryError) {
        guard address.rawValue % Self.pageSize == 0 else { throw .misalignedAddress(address) }
        let (length, overflow) = count.multipliedReportingOverflow(by: Self.pageSize)
        if overflow { throw .addressOverflow(address: address, length: .max) }
        try mapped.release(try locate(address, length), length: length)
    }

    /// The bytes of guest RAM mapped into this process's page tables right
    /// now: written pages, and pages only read (from the image, or the shared
    /// zero page). For tests and benchmarks.
    /// The corresponding file is `/proc/self/pagemap` (bit 63, present).
    public func residentBytes() throws(GuestMemoryError) -> UInt64 {
        let pagemap = try PageMap()
        var total: UInt64 = 0
        for region in regions {
            var present = PageBitmap(count: region.pageCount)
            try pagemap.markMapped(address: UInt(bitPattern: region.host), into: &present, includingSwapped: false)
            total += UInt64(present.population) * Self.pageSize
        }
        return total
    }

    /// The pages of `region` that may hold something other than zeros: those
    /// present or swapped here, and those with data in the backing file and
    /// in `otherFile` (-1 for none) at the region's image offset. Any other
    /// page reads as zeros, so a scan can skip it without reading it.
    private func candidatePages(of region: Region, pagemap: borrowing PageMap, alsoDataIn otherFile: Int32) throws(GuestMemoryError)
        -> PageBitmap
    {
        var candidates = PageBitmap(count: region.pageCount)
        try pagemap.markMapped(address: UInt(bitPattern: region.host), into: &candidates, includingSwapped: true)
        for file in [backingFile, mapped.sharedFile, otherFile] where file >= 0 {
            try FileExtents.markData(of: file, start: region.fileOffset, into: &candidates)
        }
        return candidates
    }

    /// Whether the page at `page` is all zeros. The first word is zero and
    /// every word equals the next, by one `memcmp` of the page against itself
    /// shifted by a word, which glibc vectorizes; no zero buffer is needed.
    private static func isZero(_ page: UnsafeRawPointer) -> Bool {
        page.load(as: UInt64.self) == 0 && memcmp(page, page + 8, Int(pageSize) - 8) == 0
    }

    /// `pwrite`s all of `[source, source + count)` at `offset`, resuming after short writes and signals.
    private static func writeAll(_ fd: Int32, from source: UnsafeRawPointer, count: Int, at offset: UInt64) throws(GuestMemoryError) {
        var done = 0
        while done < count {
            let written = pwrite(fd, source + done, count - done, off_t(offset) + off_t(done))
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw .imageWriteFailed(offset: offset + UInt64(done), errno: written == 0 ? EIO : errno) }
            done += written
        }
    }

    /// Copies the pages of `run` in `region` that are not all zeros from the
    /// backing file to `fd`, at the same offsets, through a buffer.
    private func copyNonZeroPages(
        _ run: Range<Int>, of region: Region, to fd: Int32, statistics: inout MemoryImageStatistics
    ) throws(GuestMemoryError) {
        let pageBytes = Int(Self.pageSize)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.compareChunk, alignment: pageBytes)
        defer { buffer.deallocate() }
        var chunkStart = run.lowerBound
        while chunkStart < run.upperBound {
            let chunkEnd = min(run.upperBound, chunkStart + Self.compareChunk / pageBytes)
            let chunkOffset = region.fileOffset + UInt64(chunkStart * pageBytes)
            try Self.readAll(backingFile, into: buffer, count: (chunkEnd - chunkStart) * pageBytes, at: chunkOffset)
            var pending: Int?
            for page in chunkStart...chunkEnd {
                let isData = page < chunkEnd && !Self.isZero(buffer + (page - chunkStart) * pageBytes)
                if isData, pending == nil { pending = page }
                guard !isData, let start = pending else { continue }
                let offset = region.fileOffset + UInt64(start * pageBytes)
                try Self.writeAll(fd, from: buffer + (start - chunkStart) * pageBytes, count: (page - start) * pageBytes, at: offset)
                statistics.pagesWritten += UInt64(page - start)
                statistics.pagesCopied += UInt64(page - start)
                statistics.bytesWritten += UInt64((page - start) * pageBytes)
                statistics.writeCalls += 1
                pending = nil
            }
            chunkStart = chunkEnd
        }
    }

    /// `pread`s exactly `count` bytes at `offset` into `destination`; the file ending first is an error.
    private static func readAll(_ fd: Int32, into destination: UnsafeMutableRawPointer, count: Int, at offset: UInt64)
        throws(GuestMemoryError)
    {
        var done = 0
        while done < count {
            let got = pread(fd, destination + done, count - done, off_t(offset) + off_t(done))
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { throw .imageReadFailed(offset: offset + UInt64(done), errno: got == 0 ? EIO : errno) }
            done += got
        }
    }
}
