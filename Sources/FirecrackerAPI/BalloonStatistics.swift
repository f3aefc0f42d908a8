/// `GET /balloon/statistics`: the balloon's size and the guest's latest
/// memory statistics (virtio 1.2, 5.5.6.3's tags), absent until the guest
/// has reported them.
public struct BalloonStatistics: Encodable, Hashable, Sendable {
    public var targetPages: Int
    public var actualPages: Int
    public var targetMib: Int
    public var actualMib: Int
    public var swapIn: UInt64?
    public var swapOut: UInt64?
    public var majorFaults: UInt64?
    public var minorFaults: UInt64?
    public var freeMemory: UInt64?
    public var totalMemory: UInt64?
    public var availableMemory: UInt64?
    public var diskCaches: UInt64?
    public var hugetlbAllocations: UInt64?
    public var hugetlbFailures: UInt64?

    enum CodingKeys: String, CodingKey {
        case targetPages = "target_pages", actualPages = "actual_pages", targetMib = "target_mib", actualMib = "actual_mib"
        case swapIn = "swap_in", swapOut = "swap_out", majorFaults = "major_faults", minorFaults = "minor_faults"
        case freeMemory = "free_memory", totalMemory = "total_memory", availableMemory = "available_memory"
        case diskCaches = "disk_caches", hugetlbAllocations = "hugetlb_allocations", hugetlbFailures = "hugetlb_failures"
    }

    /// The figures for a balloon of `targetPages` and `actualPages` 4 KiB pages
    /// whose guest reported `values` (by virtio statistics tag).
    public init(targetPages: UInt32, actualPages: UInt32, values: [UInt16: UInt64]) {
        self.targetPages = Int(targetPages)
        self.actualPages = Int(actualPages)
        targetMib = Int(targetPages / 256)
        actualMib = Int(actualPages / 256)
        swapIn = values[0]
        swapOut = values[1]
        majorFaults = values[2]
        minorFaults = values[3]
        freeMemory = values[4]
        totalMemory = values[5]
        availableMemory = values[6]
        diskCaches = values[7]
        hugetlbAllocations = values[8]
        hugetlbFailures = values[9]
    }
}
