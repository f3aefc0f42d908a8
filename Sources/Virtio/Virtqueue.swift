import GuestMemory
import Synchronization
import VMCore

/// A split virtqueue (virtio 1.2, section 2.7): the descriptor table, the
/// driver's available ring and the device's used ring, all in guest RAM,
/// read and written only through `GuestMemoryView`'s checked accessors.
///
/// The device side: `pop` takes the next request, `push` gives a finished
/// one back, `needsNotification` says whether the driver wants an interrupt
/// for what was pushed (`VIRTIO_F_EVENT_IDX` or the `NO_INTERRUPT` flag).
/// Every index the driver wrote is checked, so a broken or malicious driver
/// makes `pop` throw, never loop or reach outside RAM.
public struct Virtqueue: Sendable {
    /// Where the driver put the queue, and how big it made it.
    public struct Layout: Hashable, Sendable, Codable {
        public var size: UInt16
        public var descriptorTable: UInt64
        public var availableRing: UInt64
        public var usedRing: UInt64

        public init(size: UInt16, descriptorTable: UInt64, availableRing: UInt64, usedRing: UInt64) {
            self.size = size
            self.descriptorTable = descriptorTable
            self.availableRing = availableRing
            self.usedRing = usedRing
        }
    }

    /// What a snapshot keeps of a running queue besides its layout.
    public struct State: Hashable, Sendable, Codable {
        public var layout: Layout
        /// The next available-ring entry the device will take.
        public var nextAvailable: UInt16
        /// The used index the device last published.
        public var nextUsed: UInt16
        /// The used index when the driver was last notified.
        public var notifiedUsed: UInt16
    }

    /// Descriptor flags.
    static let next: UInt16 = 1
    static let write: UInt16 = 2
    static let indirect: UInt16 = 4
    /// The available ring's flag asking for no interrupts.
    static let noInterrupt: UInt16 = 1
    /// The size of one descriptor.
    static let descriptorSize: UInt64 = 16

    public let layout: Layout
    let memory: GuestMemoryView
    let eventIndex: Bool
    let indirectDescriptors: Bool
    public private(set) var nextAvailable: UInt16 = 0
    public private(set) var nextUsed: UInt16 = 0
    private var notifiedUsed: UInt16 = 0

    /// The queue the driver laid out, with the features it accepted; checks
    /// that the size is a power of two no larger than `maximumSize` and that
    /// the three areas lie in guest RAM.
    public init(layout: Layout, maximumSize: UInt16, features: VirtioFeatures, memory: GuestMemoryView) throws(VirtqueueError) {
        let size = UInt64(layout.size)
        guard layout.size > 0, layout.size <= maximumSize, layout.size & (layout.size - 1) == 0 else {
            throw .invalidLayout(detail: "size \(layout.size) is not a power of two from 1 to \(maximumSize)")
        }
        let areas: [(String, UInt64, UInt64, UInt64)] = [
            ("descriptor table", layout.descriptorTable, Self.descriptorSize * size, 16),
            ("available ring", layout.availableRing, 6 + 2 * size, 2),
            ("used ring", layout.usedRing, 6 + 8 * size, 4),
        ]
        for (name, address, length, alignment) in areas {
            guard address % alignment == 0 else {
                throw .invalidLayout(detail: "\(name) at \(GuestAddress(address)) is not \(alignment)-byte aligned")
            }
            guard memory.contains(GuestAddress(address), length: length) else {
                throw .invalidLayout(detail: "\(name) of \(length) bytes at \(GuestAddress(address)) is outside guest RAM")
            }
        }
        self.layout = layout
        self.memory = memory
        eventIndex = features.contains(.eventIndex)
        indirectDescriptors = features.contains(.indirectDescriptors)
    }

    /// A queue as a snapshot left it.
    public init(state: State, maximumSize: UInt16, features: VirtioFeatures, memory: GuestMemoryView) throws(VirtqueueError) {
        try self.init(layout: state.layout, maximumSize: maximumSize, features: features, memory: memory)
        nextAvailable = state.nextAvailable
        nextUsed = state.nextUsed
        notifiedUsed = state.notifiedUsed
    }

    public var state: State { State(layout: layout, nextAvailable: nextAvailable, nextUsed: nextUsed, notifiedUsed: notifiedUsed) }

    private func read16(_ address: UInt64) throws(VirtqueueError) -> UInt16 {
        do { return try memory.readInteger(at: GuestAddress(address)) } catch { throw .memory(error) }
    }

    private func write16(_ value: UInt16, _ address: UInt64) throws(VirtqueueError) {
        do { try memory.writeInteger(value, at: GuestAddress(address)) } catch { throw .memory(error) }
    }

    /// Whether the driver has made requests available that the device has not taken.
    public func hasAvailable() throws(VirtqueueError) -> Bool {
        try read16(layout.availableRing + 2) != nextAvailable
    }

    /// Takes the next available request, or `nil` when there is none.
    public mutating func pop() throws(VirtqueueError) -> DescriptorChain? {
        // Orders the available-event write of the previous pop before this
        // index read: a driver that read the old event skipped its doorbell,
        // and this read must then see its entry.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let available = try read16(layout.availableRing + 2)
        if available == nextAvailable { return nil }
        let pending = available &- nextAvailable
        guard pending <= layout.size else {
            throw .availableIndexJumped(available: available, taken: nextAvailable, size: layout.size)
        }
        // The ring entry must not be read before the index that published it.
        atomicMemoryFence(ordering: .acquiring)
        let slot = UInt64(nextAvailable % layout.size)
        let head = try read16(layout.availableRing + 4 + 2 * slot)
        let chain = try walk(head: head)
        nextAvailable &+= 1
        if eventIndex {
            // Ask to be notified when the driver makes the next one available.
            try write16(nextAvailable, layout.usedRing + 4 + 8 * UInt64(layout.size))
        }
        return chain
    }

    /// Reads one descriptor: address, length, flags, next.
    private func descriptor(in table: UInt64, _ index: UInt16) throws(VirtqueueError) -> (GuestRange, UInt16, UInt16) {
        let base = table + Self.descriptorSize * UInt64(index)
        do {
            let address: UInt64 = try memory.readInteger(at: GuestAddress(base))
            let length: UInt32 = try memory.readInteger(at: GuestAddress(base + 8))
            let flags: UInt16 = try memory.readInteger(at: GuestAddress(base + 12))
            let next: UInt16 = try memory.readInteger(at: GuestAddress(base + 14))
            return (GuestRange(address: GuestAddress(address), length: UInt64(length)), flags, next)
        } catch { throw .memory(error) }
    }

    /// Follows a chain from `head`, through at most one indirect table,
    /// checking every index, every buffer and the order of readable and
    /// writable buffers. A chain can visit at most as many descriptors as its
    /// table has, so a loop ends in `chainTooLong`.
    private func walk(head: UInt16) throws(VirtqueueError) -> DescriptorChain {
        var readable: [GuestRange] = []
        var writable: [GuestRange] = []
        var table = layout.descriptorTable
        var tableSize = layout.size
        var index = head
        var visited = 0
        var inIndirect = false
        while true {
            guard index < tableSize else { throw .descriptorIndexOutOfRange(index: index, size: tableSize) }
            visited += 1
            guard visited <= Int(tableSize) else { throw .chainTooLong(limit: Int(tableSize)) }
            let (buffer, flags, next) = try descriptor(in: table, index)
            if flags & Self.indirect != 0 {
                guard indirectDescriptors, !inIndirect, flags & Self.next == 0 else { throw .nestedIndirect }
                let length = buffer.length
                guard length > 0, length % Self.descriptorSize == 0, length / Self.descriptorSize <= 65536 / 2 else {
                    throw .invalidIndirectTable(length: UInt32(truncatingIfNeeded: length))
                }
                guard memory.contains(buffer.address, length: length) else {
                    throw .memory(.outOfBounds(address: buffer.address, length: length))
                }
                table = buffer.address.rawValue
                tableSize = UInt16(length / Self.descriptorSize)
                index = 0
                visited = 0
                inIndirect = true
                continue
            }
            guard memory.contains(buffer.address, length: buffer.length) else {
                throw .memory(.outOfBounds(address: buffer.address, length: buffer.length))
            }
            if flags & Self.write != 0 {
                writable.append(buffer)
            } else {
                guard writable.isEmpty else { throw .readableAfterWritable }
                readable.append(buffer)
            }
            guard flags & Self.next != 0 else { break }
            index = next
        }
        return DescriptorChain(head: head, readable: readable, writable: writable)
    }

    /// Gives request `head` back with `written` bytes written into its buffers.
    public mutating func push(head: UInt16, written: UInt32) throws(VirtqueueError) {
        let slot = UInt64(nextUsed % layout.size)
        let element = layout.usedRing + 4 + 8 * slot
        do {
            try memory.writeInteger(UInt32(head), at: GuestAddress(element))
            try memory.writeInteger(written, at: GuestAddress(element + 4))
        } catch { throw .memory(error) }
        // The element must be visible before the index that publishes it.
        atomicMemoryFence(ordering: .releasing)
        nextUsed &+= 1
        try write16(nextUsed, layout.usedRing + 2)
    }

    /// Whether the driver wants an interrupt for the requests pushed since
    /// the last call that said yes (virtio 1.2, 2.7.10).
    public mutating func needsNotification() throws(VirtqueueError) -> Bool {
        // The used index must be visible before the driver's event field is read.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let old = notifiedUsed
        let new = nextUsed
        if old == new { return false }
        notifiedUsed = new
        if eventIndex {
            let usedEvent = try read16(layout.availableRing + 4 + 2 * UInt64(layout.size))
            return new &- usedEvent &- 1 < new &- old
        }
        return try read16(layout.availableRing) & Self.noInterrupt == 0
    }
}
