import GuestMemory
import HostSupport
import Synchronization
import VMCore
import Virtio

/// Counts the interrupts a transport raises.
final class CountingInterrupt: VirtioInterrupt {
    let count = Atomic<Int>(0)
    func trigger() { count.add(1, ordering: .relaxed) }
}

/// A virtio driver written for tests: brings a device up through its
/// virtio-mmio registers, lays its queues out in plain guest RAM (no KVM),
/// makes descriptor chains available and reads the used rings back, as
/// Linux's virtio_mmio and virtio_ring do.
final class TestDriver {
    /// One used-ring element.
    struct Used: Equatable {
        var head: UInt16
        var length: UInt32
    }

    /// One buffer of a chain the test builds: bytes the device reads, or room the device writes.
    enum Buffer {
        case readable([UInt8])
        case writable(Int)
    }

    let memory: GuestMemory
    let transport: VirtioMMIOTransport
    let interrupt = CountingInterrupt()
    let queueSize: UInt16
    private var nextDescriptor: [UInt16]
    private var availableIndex: [UInt16]
    private var usedSeen: [UInt16]
    /// Where the next buffer goes: a bump allocator above the rings.
    private var nextBuffer: UInt64 = 0x10_0000
    let errors = ThreadLock<[String]>([])

    static let ringBase: UInt64 = 0x1_0000

    init(device: any VirtioDevice, memorySize: UInt64 = 4 << 20, queueSize: UInt16 = 16, eventLoop: EventLoopBox? = nil)
        throws
    {
        memory = try GuestMemory(size: memorySize)
        transport = try VirtioMMIOTransport(device: device, memory: memory.view, interrupt: interrupt, eventLoop: eventLoop?.loop)
        self.queueSize = queueSize
        let count = device.queueSizes.count
        nextDescriptor = Array(repeating: 0, count: count)
        availableIndex = Array(repeating: 0, count: count)
        usedSeen = Array(repeating: 0, count: count)
        let errors = self.errors
        transport.onError = { message in errors.withLock { $0.append(message) } }
    }

    func read(_ register: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: transport.read(offset: register, size: 4)) }
    func write(_ register: UInt64, _ value: UInt32) { _ = transport.write(offset: register, size: 4, value: UInt64(value)) }

    /// The features the device offers.
    var offered: UInt64 {
        write(0x014, 0)
        let low = UInt64(read(0x010))
        write(0x014, 1)
        return low | UInt64(read(0x010)) << 32
    }

    func descriptorTable(_ queue: Int) -> UInt64 { Self.ringBase + UInt64(queue) * 0x3000 }
    func availableRing(_ queue: Int) -> UInt64 { descriptorTable(queue) + 0x1000 }
    func usedRing(_ queue: Int) -> UInt64 { descriptorTable(queue) + 0x2000 }

    /// Negotiates `features` (VERSION_1 added) and makes `queues` (all by default) ready, then DRIVER_OK.
    func start(features: UInt64, queues: [Int]? = nil) {
        write(0x070, 1)
        write(0x070, 3)
        let accepted = features | VirtioFeatures.version1.rawValue
        write(0x024, 0)
        write(0x020, UInt32(truncatingIfNeeded: accepted))
        write(0x024, 1)
        write(0x020, UInt32(truncatingIfNeeded: accepted >> 32))
        write(0x070, 3 | 8)
        for queue in queues ?? Array(0..<nextDescriptor.count) {
            write(0x030, UInt32(queue))
            write(0x038, UInt32(queueSize))
            write(0x080, UInt32(truncatingIfNeeded: descriptorTable(queue)))
            write(0x090, UInt32(truncatingIfNeeded: availableRing(queue)))
            write(0x0a0, UInt32(truncatingIfNeeded: usedRing(queue)))
            write(0x044, 1)
        }
        write(0x070, 3 | 8 | 4)
    }

    var status: VirtioStatus { VirtioStatus(rawValue: read(0x070)) }

    /// Reads `size` bytes of the configuration space at `offset`, little-endian.
    func configuration(_ offset: UInt64, size: Int) -> UInt64 { transport.read(offset: 0x100 + offset, size: size) }

    func writeConfiguration(_ offset: UInt64, size: Int, _ value: UInt64) {
        _ = transport.write(offset: 0x100 + offset, size: size, value: value)
    }

    /// Room in guest RAM for `length` bytes, 16-byte aligned.
    func allocate(_ length: Int, alignment: UInt64 = 16) -> UInt64 {
        nextBuffer = (nextBuffer + alignment - 1) / alignment * alignment
        defer { nextBuffer += UInt64(max(length, 1)) }
        return nextBuffer
    }

    /// Writes one raw descriptor.
    func writeDescriptor(queue: Int, index: UInt16, address: UInt64, length: UInt32, flags: UInt16, next: UInt16) throws {
        let base = GuestAddress(descriptorTable(queue) + 16 * UInt64(index))
        try memory.writeInteger(address, at: base)
        try memory.writeInteger(length, at: GuestAddress(base.rawValue + 8))
        try memory.writeInteger(flags, at: GuestAddress(base.rawValue + 12))
        try memory.writeInteger(next, at: GuestAddress(base.rawValue + 14))
    }

    /// Puts `head` in the available ring.
    func makeAvailable(queue: Int, head: UInt16) throws {
        let slot = UInt64(availableIndex[queue] % queueSize)
        try memory.writeInteger(head, at: GuestAddress(availableRing(queue) + 4 + 2 * slot))
        availableIndex[queue] &+= 1
        try memory.writeInteger(availableIndex[queue], at: GuestAddress(availableRing(queue) + 2))
    }

    /// Builds a chain of `buffers` in fresh memory, makes it available and
    /// returns its head and each buffer's guest address.
    @discardableResult
    func add(queue: Int, _ buffers: [Buffer]) throws -> (head: UInt16, addresses: [UInt64]) {
        var indices: [UInt16] = []
        for _ in buffers {
            indices.append(nextDescriptor[queue])
            nextDescriptor[queue] = (nextDescriptor[queue] + 1) % queueSize
        }
        var addresses: [UInt64] = []
        for (i, buffer) in buffers.enumerated() {
            let flags: UInt16 = i + 1 < buffers.count ? 1 : 0
            let next = i + 1 < buffers.count ? indices[i + 1] : 0
            switch buffer {
            case .readable(let bytes):
                let address = allocate(bytes.count)
                try memory.write(bytes, at: GuestAddress(address))
                try writeDescriptor(
                    queue: queue, index: indices[i], address: address, length: UInt32(bytes.count), flags: flags, next: next)
                addresses.append(address)
            case .writable(let length):
                let address = allocate(length)
                try memory.fill(0xee, count: UInt64(length), at: GuestAddress(address))
                try writeDescriptor(queue: queue, index: indices[i], address: address, length: UInt32(length), flags: flags | 2, next: next)
                addresses.append(address)
            }
        }
        try makeAvailable(queue: queue, head: indices[0])
        return (indices[0], addresses)
    }

    /// The used elements the device published since the last call.
    func used(queue: Int) throws -> [Used] {
        let index: UInt16 = try memory.readInteger(at: GuestAddress(usedRing(queue) + 2))
        var result: [Used] = []
        while usedSeen[queue] != index {
            let slot = UInt64(usedSeen[queue] % queueSize)
            let element = usedRing(queue) + 4 + 8 * slot
            let head: UInt32 = try memory.readInteger(at: GuestAddress(element))
            let length: UInt32 = try memory.readInteger(at: GuestAddress(element + 4))
            result.append(Used(head: UInt16(truncatingIfNeeded: head), length: length))
            usedSeen[queue] &+= 1
        }
        return result
    }

    /// The driver's notification, served as the I/O thread would.
    func notify(_ queue: Int) { transport.processQueue(queue) }
}

/// An event loop the test owns and stops.
final class EventLoopBox {
    let loop: EventLoop
    init() throws { loop = try EventLoop(name: "virtio-test") }
    deinit { loop.stop() }
}
