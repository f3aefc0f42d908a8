import Devices
import GuestMemory
import VMCore
import Virtio

/// virtio-balloon (virtio 1.2, section 5.5): the host asks the guest to give
/// memory back by setting a target number of 4 KiB pages; the guest's driver
/// "inflates" the balloon with pages it no longer uses and sends their page
/// frame numbers, which are handed back to the host (`MADV_DONTNEED`). It
/// also reports memory statistics and, with free-page reporting, hands back
/// free blocks on its own.
///
/// Queues, in the order Linux sets them up: inflate, deflate, statistics
/// (`STATS_VQ`), then free-page reporting (`PAGE_REPORTING`). Linux numbers
/// the queues it uses consecutively, so the reporting queue is index 3 with
/// statistics and 2 without: the device works out its index from the
/// features the driver accepted.
///
/// Every page number and range from the guest is checked to lie in RAM
/// before it is released; those that do not are counted and skipped.
public final class VirtioBalloon: VirtioDevice, @unchecked Sendable {
    // Unchecked: what the host side shares (`shared`) is behind its lock; the
    // rest is only touched in `VirtioDevice` calls or `link.perform`, which
    // the transport serialises with its own lock.

    /// The balloon's feature bits (virtio 1.2, 5.5.3).
    public enum Feature {
        public static let mustTellHost = VirtioFeatures(bit: 0)
        public static let statisticsQueue = VirtioFeatures(bit: 1)
        public static let deflateOnOutOfMemory = VirtioFeatures(bit: 2)
        public static let freePageHint = VirtioFeatures(bit: 3)
        public static let pagePoison = VirtioFeatures(bit: 4)
        public static let pageReporting = VirtioFeatures(bit: 5)
    }

    /// The statistics tags (virtio 1.2, 5.5.6.3), by name.
    public enum StatisticTag: UInt16, CaseIterable, Sendable, Codable {
        case swapIn = 0, swapOut, majorFaults, minorFaults, freeMemory, totalMemory, availableMemory
        case diskCaches, hugePageAllocations, hugePageFailures
    }

    /// The size of a balloon page, whatever the guest's page size.
    public static let pageSize: UInt64 = 4096
    static let queueSize: UInt16 = 256
    static let inflateQueue = 0
    static let deflateQueue = 1
    static let statisticsQueue = 2

    public var type: VirtioDeviceType { .balloon }
    public let queueSizes: [UInt16]
    public let features: VirtioFeatures

    /// What the host API and the device share.
    private struct Shared {
        var targetPages: UInt32 = 0
        var actualPages: UInt32 = 0
        var statistics: [UInt16: UInt64] = [:]
        var statisticsUpdates = 0
        var releasedPages: UInt64 = 0
        var ignoredPages: UInt64 = 0
        var link: VirtioDeviceLink?
    }
    private let shared = ThreadLock(Shared())

    /// The statistics buffer the driver left with the device; giving it back asks for fresh figures.
    private var heldStatisticsHead: UInt16?
    /// The reporting queue's index for the features the driver accepted (`nil`: none).
    private var reportingQueue: Int?

    /// A balloon offering statistics and, unless `freePageReporting` is
    /// false, free-page reporting; `deflateOnOutOfMemory` lets the guest take
    /// pages back from the balloon when it runs out of memory.
    public init(deflateOnOutOfMemory: Bool = false, freePageReporting: Bool = true) {
        var features: VirtioFeatures = [Feature.statisticsQueue]
        if deflateOnOutOfMemory { features.insert(Feature.deflateOnOutOfMemory) }
        if freePageReporting { features.insert(Feature.pageReporting) }
        self.features = features
        queueSizes = Array(repeating: Self.queueSize, count: freePageReporting ? 4 : 3)
    }

    // MARK: Host side

    /// Asks the guest to hold `pages` 4 KiB pages in the balloon (0: give
    /// everything back), telling the driver through a configuration change.
    public func setTarget(pages: UInt32) {
        let link = shared.withLock { shared -> VirtioDeviceLink? in
            shared.targetPages = pages
            return shared.link
        }
        link?.configurationChanged()
    }

    /// The number of pages asked for.
    public var targetPages: UInt32 { shared.withLock { $0.targetPages } }
    /// The number of pages the driver says the balloon holds.
    public var actualPages: UInt32 { shared.withLock { $0.actualPages } }
    /// Pages handed back to the host so far (inflated or reported).
    public var releasedPages: UInt64 { shared.withLock { $0.releasedPages } }
    /// Page numbers from the guest that were not in RAM, skipped.
    public var ignoredPages: UInt64 { shared.withLock { $0.ignoredPages } }

    /// The guest's latest statistics, by tag (unknown tags included), and how many updates came so far.
    public var statistics: (values: [UInt16: UInt64], updates: Int) {
        shared.withLock { ($0.statistics, $0.statisticsUpdates) }
    }

    /// Asks the driver for fresh statistics by giving its buffer back; the
    /// answer arrives on the statistics queue. Returns whether a buffer was
    /// there to give back.
    @discardableResult
    public func requestStatistics() -> Bool {
        guard let link = shared.withLock({ $0.link }) else { return false }
        var requested = false
        link.perform { queues throws(VirtqueueError) in
            guard let head = heldStatisticsHead else { return }
            heldStatisticsHead = nil
            try queues.push(Self.statisticsQueue, head: head, written: 0)
            try queues.notify(Self.statisticsQueue)
            requested = true
        }
        return requested
    }

    // MARK: VirtioDevice

    /// `num_pages` then `actual`, both little-endian 32-bit.
    public var configuration: [UInt8] {
        let (target, actual) = shared.withLock { ($0.targetPages, $0.actualPages) }
        return LittleEndian.bytes(target) + LittleEndian.bytes(actual)
    }

    /// Only `actual` (bytes 4-7) is the driver's to write.
    public func writeConfiguration(at offset: Int, bytes: [UInt8]) {
        shared.withLock { shared in
            var actual = LittleEndian.bytes(shared.actualPages)
            for (i, byte) in bytes.enumerated() where (4..<8).contains(offset + i) { actual[offset + i - 4] = byte }
            shared.actualPages = LittleEndian.read(UInt32.self, actual, at: 0)
        }
    }

    public func activate(_ queues: VirtioQueueSet, link: VirtioDeviceLink) throws(VirtqueueError) {
        guard queues.isReady(Self.inflateQueue), queues.isReady(Self.deflateQueue) else {
            throw .malformedRequest(detail: "virtio-balloon needs its inflate and deflate queues")
        }
        let statistics = queues.features.contains(Feature.statisticsQueue)
        reportingQueue =
            queues.features.contains(Feature.pageReporting) ? (statistics ? 3 : 2) : nil
        shared.withLock { $0.link = link }
        // A restored device may still hold the driver's statistics buffer: it stays held.
    }

    public func process(queue: Int, in queues: VirtioQueueSet) throws(VirtqueueError) {
        switch queue {
        case Self.inflateQueue:
            while let chain = try queues.pop(queue) {
                try inflate(chain, memory: queues.memory)
                try queues.push(queue, head: chain.head, written: 0)
            }
        case Self.deflateQueue:
            // Deflated pages come back to the guest when it touches them: nothing to do.
            while let chain = try queues.pop(queue) { try queues.push(queue, head: chain.head, written: 0) }
        case reportingQueue:
            while let chain = try queues.pop(queue) {
                try report(chain, memory: queues.memory)
                try queues.push(queue, head: chain.head, written: 0)
            }
        case Self.statisticsQueue where queues.features.contains(Feature.statisticsQueue):
            while let chain = try queues.pop(queue) {
                // A driver that sends a second buffer while we hold one gets the old one back.
                if let old = heldStatisticsHead { try queues.push(queue, head: old, written: 0) }
                try readStatistics(chain, memory: queues.memory)
                heldStatisticsHead = chain.head
            }
        default:
            return
        }
        try queues.notify(queue)
    }

    public func reset() {
        heldStatisticsHead = nil
        reportingQueue = nil
        shared.withLock {
            $0.link = nil
            $0.actualPages = 0
        }
    }

    // MARK: Requests

    /// An inflate request: little-endian 32-bit page frame numbers of 4 KiB pages.
    private func inflate(_ chain: DescriptorChain, memory: GuestMemoryView) throws(VirtqueueError) {
        let length = chain.readableLength
        guard length % 4 == 0, length <= UInt64(Self.queueSize) * 4 * 1024 else {
            throw .malformedRequest(detail: "balloon inflate request of \(length) bytes (4-byte page numbers expected)")
        }
        let bytes: [UInt8]
        do { bytes = try chain.readable.read(count: Int(length), from: memory) } catch { throw .memory(error) }
        var released: UInt64 = 0
        var ignored: UInt64 = 0
        var index = 0
        // Contiguous page numbers are released with one call.
        while index < bytes.count {
            let first = pageNumber(bytes, index)
            var count: UInt64 = 1
            while index + Int(count) * 4 < bytes.count, pageNumber(bytes, index + Int(count) * 4) == first + count { count += 1 }
            index += Int(count) * 4
            let address = GuestAddress(first * Self.pageSize)
            if memory.contains(address, length: count * Self.pageSize),
                (try? memory.releasePages(at: address, count: count)) != nil
            {
                released += count
            } else {
                ignored += count
            }
        }
        shared.withLock {
            $0.releasedPages += released
            $0.ignoredPages += ignored
        }
    }

    private func pageNumber(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
        UInt64(LittleEndian.read(UInt32.self, bytes, at: offset))
    }

    /// A free-page report: each device-writable buffer is a block of free
    /// guest pages; the whole pages inside each are released.
    private func report(_ chain: DescriptorChain, memory: GuestMemoryView) throws(VirtqueueError) {
        var released: UInt64 = 0
        var ignored: UInt64 = 0
        for range in chain.writable + chain.readable {
            let start = (range.address.rawValue + Self.pageSize - 1) / Self.pageSize * Self.pageSize
            let end = (range.address.rawValue + range.length) / Self.pageSize * Self.pageSize
            guard end > start else { continue }
            let count = (end - start) / Self.pageSize
            if (try? memory.releasePages(at: GuestAddress(start), count: count)) != nil {
                released += count
            } else {
                ignored += count
            }
        }
        shared.withLock {
            $0.releasedPages += released
            $0.ignoredPages += ignored
        }
    }

    /// A statistics buffer: 10-byte entries, a 16-bit tag then a 64-bit value.
    private func readStatistics(_ chain: DescriptorChain, memory: GuestMemoryView) throws(VirtqueueError) {
        let length = min(chain.readableLength, 64 * 10)
        let bytes: [UInt8]
        do { bytes = try chain.readable.read(count: Int(length), from: memory) } catch { throw .memory(error) }
        var values: [UInt16: UInt64] = [:]
        var offset = 0
        while offset + 10 <= bytes.count {
            values[LittleEndian.read(UInt16.self, bytes, at: offset)] = LittleEndian.read(UInt64.self, bytes, at: offset + 2)
            offset += 10
        }
        shared.withLock {
            $0.statistics = values
            $0.statisticsUpdates += 1
        }
    }
}

extension VirtioBalloon {
    /// What a snapshot keeps: the target, what the driver reported, and the
    /// statistics buffer the device holds (by its head index).
    public struct State: Hashable, Sendable, Codable {
        public var targetPages: UInt32
        public var actualPages: UInt32
        public var heldStatisticsHead: UInt16?

        public init(targetPages: UInt32, actualPages: UInt32, heldStatisticsHead: UInt16?) {
            self.targetPages = targetPages
            self.actualPages = actualPages
            self.heldStatisticsHead = heldStatisticsHead
        }
    }

    /// The device's state; the guest must not run meanwhile.
    public var state: State {
        shared.withLock { State(targetPages: $0.targetPages, actualPages: $0.actualPages, heldStatisticsHead: heldStatisticsHead) }
    }

    /// Puts a saved state back, before the transport's (which re-activates the device).
    public func restore(_ state: State) throws(DeviceStateError) {
        if let head = state.heldStatisticsHead, head >= Self.queueSize {
            throw DeviceStateError(
                device: "VirtioBalloon", field: "heldStatisticsHead",
                problem: .outOfRange(value: Int(head), valid: 0...Int(Self.queueSize) - 1))
        }
        heldStatisticsHead = state.heldStatisticsHead
        shared.withLock {
            $0.targetPages = state.targetPages
            $0.actualPages = state.actualPages
        }
    }
}
