import GuestMemory
import HostSupport
import Synchronization
import VMCore
import Virtio
import VirtioTestDriver

/// Counts the interrupts a transport raises.
final class CountingInterrupt: VirtioInterrupt {
    let count = Atomic<Int>(0)
    func trigger() { count.add(1, ordering: .relaxed) }
}

/// The device tests' harness around `VirtioTestDriver`: it owns the guest
/// RAM, the transport (optionally served by an event loop, as the VMM's I/O
/// thread serves it) and an interrupt counter, and records the transport's
/// error reports. The driver work itself (negotiation, rings, chains) is
/// `VirtioTestDriver`'s.
final class TestDriver {
    /// One used-ring element.
    struct Used: Equatable {
        var head: UInt16
        var length: UInt32
    }

    typealias Buffer = VirtioTestDriver.Buffer

    let memory: GuestMemory
    let transport: VirtioMMIOTransport
    let driver: VirtioTestDriver
    let interrupt = CountingInterrupt()
    let queueSize: UInt16
    let errors = ThreadLock<[String]>([])

    init(device: any VirtioDevice, memorySize: UInt64 = 4 << 20, queueSize: UInt16 = 16, eventLoop: EventLoopBox? = nil)
        throws
    {
        memory = try GuestMemory(size: memorySize)
        transport = try VirtioMMIOTransport(device: device, memory: memory.view, interrupt: interrupt, eventLoop: eventLoop?.loop)
        driver = VirtioTestDriver(transport: transport, memory: memory.view)
        self.queueSize = queueSize
        let errors = self.errors
        transport.onError = { message in errors.withLock { $0.append(message) } }
    }

    /// The features the device offers.
    var offered: UInt64 {
        driver.write(0x014, 0)
        let low = UInt64(driver.read(0x010))
        driver.write(0x014, 1)
        return low | UInt64(driver.read(0x010)) << 32
    }

    /// Negotiates `features` (VERSION_1 added) and makes `queues` (all by default) ready, then DRIVER_OK.
    func start(features: UInt64, queues: [Int]? = nil) {
        driver.negotiate(VirtioFeatures(rawValue: features | VirtioFeatures.version1.rawValue))
        for queue in queues ?? Array(transport.device.queueSizes.indices) {
            driver.setUpQueue(queue, size: queueSize)
        }
        driver.start()
    }

    var status: VirtioStatus { VirtioStatus(rawValue: driver.status) }

    func usedRing(_ queue: Int) -> UInt64 { driver.queues[queue]?.layout.usedRing ?? 0 }

    /// Reads `size` bytes of the configuration space at `offset`, little-endian.
    func configuration(_ offset: UInt64, size: Int) -> UInt64 { driver.configuration(offset: offset, size: size) }

    func writeConfiguration(_ offset: UInt64, size: Int, _ value: UInt64) {
        _ = transport.write(offset: 0x100 + offset, size: size, value: value)
    }

    /// Writes one raw descriptor.
    func writeDescriptor(queue: Int, index: UInt16, address: UInt64, length: UInt32, flags: UInt16, next: UInt16) {
        driver.writeDescriptor(queue: queue, index: index, address: address, length: length, flags: flags, next: next)
    }

    /// Puts `head` in the available ring.
    func makeAvailable(queue: Int, head: UInt16) { driver.makeAvailable(queue: queue, head: head) }

    /// Builds a chain of `buffers` in fresh memory, makes it available and
    /// returns its head and each writable buffer's guest address.
    @discardableResult
    func add(queue: Int, _ buffers: [Buffer]) -> (head: UInt16, writable: [UInt64]) {
        driver.submit(queue: queue, buffers)
    }

    /// The used elements the device published since the last call.
    func used(queue: Int) -> [Used] {
        driver.takeUsed(queue: queue).map { Used(head: UInt16(truncatingIfNeeded: $0.id), length: $0.length) }
    }

    /// The driver's notification, served here on the caller's thread (as the
    /// I/O thread would) without signalling the queue's notifier, so that an
    /// event loop serving the transport does not run the queue at the same time.
    func notify(_ queue: Int) { transport.processQueue(queue) }
}

/// An event loop the test owns and stops.
final class EventLoopBox {
    let loop: EventLoop
    init() throws { loop = try EventLoop(name: "virtio-test") }
    deinit { loop.stop() }
}
