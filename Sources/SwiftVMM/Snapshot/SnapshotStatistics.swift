/// What writing a snapshot cost.
public struct SnapshotStatistics: Hashable, Sendable {
    /// Pages of RAM written to the memory file (the rest are holes).
    public var pagesWritten: UInt64
    /// Bytes the memory file occupies on disk.
    public var memoryFileAllocatedBytes: UInt64
    /// The state file's size.
    public var stateFileBytes: UInt64
}
