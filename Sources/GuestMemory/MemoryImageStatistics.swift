/// What a sparse save of guest RAM did (`GuestMemory.writeImage(to:)`).
/// Time is left to the caller, who knows which clock it wants.
public struct MemoryImageStatistics: Hashable, Sendable {
    /// Pages that could hold data: present or swapped in this process, or data
    /// in the file the memory is mapped from. Only these were read.
    public var candidatePages: UInt64
    /// Pages written because they were not all zeros; the rest stay holes.
    /// Includes `pagesCopied`.
    public var pagesWritten: UInt64
    /// `pagesWritten` in bytes.
    public var bytesWritten: UInt64
    /// Of `pagesWritten`, those of memory mapped from an image that were not
    /// written since: read from that file with `pread`, not through guest RAM.
    public var pagesCopied: UInt64
    /// `pwrite` calls: consecutive non-zero pages go out in one.
    public var writeCalls: UInt64

    public init(
        candidatePages: UInt64 = 0, pagesWritten: UInt64 = 0, bytesWritten: UInt64 = 0, pagesCopied: UInt64 = 0, writeCalls: UInt64 = 0
    ) {
        self.candidatePages = candidatePages
        self.pagesWritten = pagesWritten
        self.bytesWritten = bytesWritten
        self.pagesCopied = pagesCopied
        self.writeCalls = writeCalls
    }
}
