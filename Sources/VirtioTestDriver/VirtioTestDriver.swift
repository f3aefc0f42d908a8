import GuestMemory
import VMCore
import Virtio

/// A virtio driver written in Swift, for testing devices without a guest:
/// it talks to a `VirtioMMIOTransport` through its registers, as a guest's
/// driver would, and lays queues and buffers out in a plain `GuestMemory`.
/// It can also do what a broken driver does (raw descriptors, wild
/// indices), for the malicious-driver tests and the fuzzers.
///
/// Not for production; not thread-safe.
public final class VirtioTestDriver {
    public let transport: VirtioMMIOTransport
    public let memory: GuestMemoryView
    /// The next free guest address for rings and buffers.
    public private(set) var nextFree: UInt64
    /// Each set-up queue's layout and the driver's own indices.
    public private(set) var queues: [Int: QueueState] = [:]

    /// A queue as the driver sees it.
    public struct QueueState {
        public var layout: Virtqueue.Layout
        /// Descriptors handed out so far (the driver never reuses them).
        public var nextDescriptor: UInt16 = 0
        public var availableIndex: UInt16 = 0
        public var lastSeenUsed: UInt16 = 0
    }

    public init(transport: VirtioMMIOTransport, memory: GuestMemoryView, firstFreeAddress: UInt64 = 0x1_0000) {
        self.transport = transport
        self.memory = memory
        nextFree = firstFreeAddress
    }

    /// Reserves `length` bytes aligned to `alignment` and returns their address.
    public func allocate(_ length: UInt64, alignment: UInt64 = 16) -> UInt64 {
        nextFree = (nextFree + alignment - 1) / alignment * alignment
        defer { nextFree += length }
        return nextFree
    }

    public func read(_ register: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: transport.read(offset: register, size: 4)) }
    public func write(_ register: UInt64, _ value: UInt32) { _ = transport.write(offset: register, size: 4, value: UInt64(value)) }

    public var status: UInt32 { read(0x70) }

    /// Reset, ACKNOWLEDGE, DRIVER, the features (default: all offered), FEATURES_OK.
    /// Returns whether the device kept FEATURES_OK.
    @discardableResult
    public func negotiate(_ features: VirtioFeatures? = nil) -> Bool {
        write(0x70, 0)
        write(0x70, 1)
        write(0x70, 1 | 2)
        write(0x14, 0)
        var offered = UInt64(read(0x10))
        write(0x14, 1)
        offered |= UInt64(read(0x10)) << 32
        let accepted = features?.rawValue ?? offered
        write(0x24, 0)
        write(0x20, UInt32(truncatingIfNeeded: accepted))
        write(0x24, 1)
        write(0x20, UInt32(truncatingIfNeeded: accepted >> 32))
        write(0x70, 1 | 2 | 8)
        return status & 8 != 0
    }

    /// Lays out queue `index` with `size` entries in fresh memory and makes it ready.
    public func setUpQueue(_ index: Int, size: UInt16) {
        let layout = Virtqueue.Layout(
            size: size, descriptorTable: allocate(16 * UInt64(size)), availableRing: allocate(6 + 2 * UInt64(size), alignment: 2),
            usedRing: allocate(6 + 8 * UInt64(size), alignment: 4))
        setUpQueue(index, layout: layout)
    }

    /// Programs queue `index` with an arbitrary `layout` (valid or not) and makes it ready.
    public func setUpQueue(_ index: Int, layout: Virtqueue.Layout) {
        write(0x30, UInt32(index))
        write(0x38, UInt32(layout.size))
        write(0x80, UInt32(truncatingIfNeeded: layout.descriptorTable))
        write(0x84, UInt32(truncatingIfNeeded: layout.descriptorTable >> 32))
        write(0x90, UInt32(truncatingIfNeeded: layout.availableRing))
        write(0x94, UInt32(truncatingIfNeeded: layout.availableRing >> 32))
        write(0xa0, UInt32(truncatingIfNeeded: layout.usedRing))
        write(0xa4, UInt32(truncatingIfNeeded: layout.usedRing >> 32))
        write(0x44, 1)
        queues[index] = QueueState(layout: layout)
    }

    /// Sets DRIVER_OK. Returns whether the device is running (no NEEDS_RESET).
    @discardableResult
    public func start() -> Bool {
        write(0x70, 1 | 2 | 8 | 4)
        return status & 0x40 == 0 && transport.isActive
    }

    /// A buffer of a request: bytes the device reads, or room it writes.
    public enum Buffer {
        case readable([UInt8])
        case writable(Int)
    }

    /// Writes one raw descriptor `index` of queue `queue`.
    public func writeDescriptor(queue: Int, index: UInt16, address: UInt64, length: UInt32, flags: UInt16, next: UInt16) {
        guard let state = queues[queue] else { return }
        let base = state.layout.descriptorTable + 16 * UInt64(index)
        try? memory.writeInteger(address, at: GuestAddress(base))
        try? memory.writeInteger(length, at: GuestAddress(base + 8))
        try? memory.writeInteger(flags, at: GuestAddress(base + 12))
        try? memory.writeInteger(next, at: GuestAddress(base + 14))
    }

    /// Puts descriptor `head` in the available ring of `queue` and publishes it (no notification).
    public func makeAvailable(queue: Int, head: UInt16) {
        guard var state = queues[queue] else { return }
        let slot = UInt64(state.availableIndex % state.layout.size)
        try? memory.writeInteger(head, at: GuestAddress(state.layout.availableRing + 4 + 2 * slot))
        state.availableIndex &+= 1
        try? memory.writeInteger(state.availableIndex, at: GuestAddress(state.layout.availableRing + 2))
        queues[queue] = state
    }

    /// Sets the available index of `queue` to any value (a broken driver's jump).
    public func setAvailableIndex(queue: Int, _ value: UInt16) {
        guard var state = queues[queue] else { return }
        state.availableIndex = value
        try? memory.writeInteger(value, at: GuestAddress(state.layout.availableRing + 2))
        queues[queue] = state
    }

    /// Builds a chain of fresh buffers, makes it available and returns the
    /// head and each writable buffer's address. `indirect` puts the chain in
    /// an indirect table behind one descriptor.
    @discardableResult
    public func submit(queue: Int, _ buffers: [Buffer], indirect: Bool = false) -> (head: UInt16, writable: [UInt64]) {
        guard var state = queues[queue] else { return (0, []) }
        var entries: [(address: UInt64, length: UInt32, write: Bool)] = []
        var writable: [UInt64] = []
        for buffer in buffers {
            switch buffer {
            case .readable(let bytes):
                let address = allocate(UInt64(max(1, bytes.count)))
                try? memory.write(bytes, at: GuestAddress(address))
                entries.append((address, UInt32(bytes.count), false))
            case .writable(let count):
                let address = allocate(UInt64(max(1, count)))
                try? memory.fill(0xcc, count: UInt64(count), at: GuestAddress(address))
                entries.append((address, UInt32(count), true))
                writable.append(address)
            }
        }
        let head = state.nextDescriptor
        if indirect {
            let table = allocate(16 * UInt64(entries.count))
            for (i, entry) in entries.enumerated() {
                let base = table + 16 * UInt64(i)
                let flags: UInt16 = (i + 1 < entries.count ? 1 : 0) | (entry.write ? 2 : 0)
                try? memory.writeInteger(entry.address, at: GuestAddress(base))
                try? memory.writeInteger(entry.length, at: GuestAddress(base + 8))
                try? memory.writeInteger(flags, at: GuestAddress(base + 12))
                try? memory.writeInteger(UInt16(i + 1), at: GuestAddress(base + 14))
            }
            writeDescriptor(queue: queue, index: head, address: table, length: UInt32(16 * entries.count), flags: 4, next: 0)
            state.nextDescriptor = (head + 1) % state.layout.size
        } else {
            for (i, entry) in entries.enumerated() {
                let index = (head + UInt16(i)) % state.layout.size
                let flags: UInt16 = (i + 1 < entries.count ? 1 : 0) | (entry.write ? 2 : 0)
                writeDescriptor(
                    queue: queue, index: index, address: entry.address, length: entry.length, flags: flags,
                    next: (index + 1) % state.layout.size)
            }
            state.nextDescriptor = (head + UInt16(entries.count)) % state.layout.size
        }
        queues[queue] = state
        makeAvailable(queue: queue, head: head)
        return (head, writable)
    }

    /// Writes QueueNotify (which only signals the queue's notifier) and
    /// runs the device's work as the I/O thread would.
    public func notify(queue: Int) {
        write(0x50, UInt32(queue))
        if queue < transport.notifiers.count { transport.notifiers[queue].drain() }
        transport.processQueue(queue)
    }

    /// The used entries (id, length) of `queue` published since the last call.
    public func takeUsed(queue: Int) -> [(id: UInt32, length: UInt32)] {
        guard var state = queues[queue] else { return [] }
        let usedIndex: UInt16 = (try? memory.readInteger(at: GuestAddress(state.layout.usedRing + 2))) ?? 0
        var entries: [(UInt32, UInt32)] = []
        while state.lastSeenUsed != usedIndex, entries.count < Int(state.layout.size) {
            let slot = UInt64(state.lastSeenUsed % state.layout.size)
            let base = state.layout.usedRing + 4 + 8 * slot
            let id: UInt32 = (try? memory.readInteger(at: GuestAddress(base))) ?? .max
            let length: UInt32 = (try? memory.readInteger(at: GuestAddress(base + 4))) ?? .max
            entries.append((id, length))
            state.lastSeenUsed &+= 1
        }
        queues[queue] = state
        return entries
    }

    /// Reads `count` bytes the device wrote at `address`.
    public func bytes(at address: UInt64, count: Int) -> [UInt8] {
        (try? memory.read(count: count, at: GuestAddress(address))) ?? []
    }

    /// Reads the device's configuration space.
    public func configuration(offset: UInt64, size: Int) -> UInt64 {
        transport.read(offset: 0x100 + offset, size: size)
    }
}

extension VirtioTestDriver {
    /// Takes over queue `queue` as `other` left it (a restored device's driver).
    public func setUpQueueState(from other: VirtioTestDriver, queue: Int) {
        queues[queue] = other.queues[queue]
    }
}
