import GuestMemory
import Testing
import VMCore
import Virtio
import VirtioTestDriver

/// A broken or hostile driver puts the device in NEEDS_RESET with the
/// configuration-change interrupt, once, and never crashes or hangs the
/// VMM; a reset brings the device back.
@Suite struct MaliciousDriverTests {
    let memory: GuestMemoryView
    let device = EchoDevice()
    let interrupt = CountingInterrupt()
    let transport: VirtioMMIOTransport
    let driver: VirtioTestDriver
    let errors = ThreadLock<[String]>([])
    static let ramSize: UInt64 = 1 << 20

    init() throws {
        memory = try GuestMemory(size: Self.ramSize).view
        transport = try VirtioMMIOTransport(device: device, memory: memory, interrupt: interrupt, eventLoop: nil)
        driver = VirtioTestDriver(transport: transport, memory: memory)
        let errors = self.errors
        transport.onError = { message in errors.withLock { $0.append(message) } }
        #expect(driver.negotiate())
    }

    /// Runs queue 0 and checks the device gave up cleanly, then comes back after a reset.
    func expectNeedsReset(_ comment: Comment, mentioning text: String) {
        driver.notify(queue: 0)
        #expect(driver.status & 0x40 != 0, comment)
        #expect(!transport.isActive, comment)
        #expect(driver.read(0x060) & 2 != 0, "configuration-change interrupt")
        #expect(driver.takeUsed(queue: 0).isEmpty)
        let messages = errors.withLock { $0 }
        #expect(messages.count == 1, comment)
        #expect(messages.first?.contains(text) == true, "\(messages)")
        driver.notify(queue: 0)
        #expect(errors.withLock { $0.count } == 1, "a failed device does not report again")
        // A reset and a fresh start work again.
        #expect(driver.negotiate())
        driver.setUpQueue(0, size: 8)
        #expect(driver.start())
        let (_, writable) = driver.submit(queue: 0, [.readable([42]), .writable(1)])
        driver.notify(queue: 0)
        #expect(driver.bytes(at: writable[0], count: 1) == [42])
    }

    func started() {
        driver.setUpQueue(0, size: 8)
        #expect(driver.start())
    }

    @Test func descriptorPointingAtItself() {
        started()
        driver.writeDescriptor(queue: 0, index: 0, address: 0x8000, length: 16, flags: 1, next: 0)
        driver.makeAvailable(queue: 0, head: 0)
        expectNeedsReset("a one-descriptor loop", mentioning: "longer than 8")
    }

    @Test func chainLongerThanTheQueueThroughACycle() {
        started()
        driver.writeDescriptor(queue: 0, index: 3, address: 0x8000, length: 16, flags: 1, next: 5)
        driver.writeDescriptor(queue: 0, index: 5, address: 0x8000, length: 16, flags: 1, next: 3)
        driver.makeAvailable(queue: 0, head: 3)
        expectNeedsReset("a two-descriptor cycle", mentioning: "loop")
    }

    @Test func nextIndexOutsideTheTable() {
        started()
        driver.writeDescriptor(queue: 0, index: 0, address: 0x8000, length: 16, flags: 1, next: 9)
        driver.makeAvailable(queue: 0, head: 0)
        expectNeedsReset("next = 9 in a table of 8", mentioning: "index 9")
    }

    @Test func headIndexOutsideTheTable() {
        started()
        driver.makeAvailable(queue: 0, head: 0xffff)
        expectNeedsReset("head 65535", mentioning: "index 65535")
    }

    @Test func bufferOutsideRAM() {
        started()
        driver.writeDescriptor(queue: 0, index: 0, address: Self.ramSize - 8, length: 16, flags: 0, next: 0)
        driver.makeAvailable(queue: 0, head: 0)
        expectNeedsReset("a buffer straddling the end of RAM", mentioning: "outside guest RAM")
    }

    @Test func bufferWhoseEndOverflows() {
        started()
        driver.writeDescriptor(queue: 0, index: 0, address: 0xffff_ffff_ffff_fff0, length: 0x100, flags: 2, next: 0)
        driver.makeAvailable(queue: 0, head: 0)
        expectNeedsReset("address + length past 2^64", mentioning: "0xfffffffffffffff0 is outside guest RAM")
    }

    @Test func availableIndexJumpingAhead() {
        started()
        driver.setAvailableIndex(queue: 0, 200)
        expectNeedsReset("200 entries published in a queue of 8", mentioning: "available index 200")
    }

    @Test func readableAfterWritable() {
        started()
        driver.writeDescriptor(queue: 0, index: 0, address: 0x8000, length: 4, flags: 1 | 2, next: 1)
        driver.writeDescriptor(queue: 0, index: 1, address: 0x9000, length: 4, flags: 0, next: 0)
        driver.makeAvailable(queue: 0, head: 0)
        expectNeedsReset("a readable buffer after a writable one", mentioning: "readable buffer after")
    }

    @Test func nestedIndirectTables() throws {
        started()
        let table: UInt64 = 0x8000
        try memory.writeInteger(UInt64(0x9000), at: GuestAddress(table))
        try memory.writeInteger(UInt32(16), at: GuestAddress(table + 8))
        try memory.writeInteger(UInt16(4), at: GuestAddress(table + 12))
        driver.writeDescriptor(queue: 0, index: 0, address: table, length: 16, flags: 4, next: 0)
        driver.makeAvailable(queue: 0, head: 0)
        expectNeedsReset("an indirect descriptor inside an indirect table", mentioning: "indirect")
    }

    @Test func indirectTableOfAnOddLength() {
        started()
        driver.writeDescriptor(queue: 0, index: 0, address: 0x8000, length: 17, flags: 4, next: 0)
        driver.makeAvailable(queue: 0, head: 0)
        expectNeedsReset("a 17-byte indirect table", mentioning: "17 bytes")
    }

    @Test func indirectTableOutsideRAM() {
        started()
        driver.writeDescriptor(queue: 0, index: 0, address: Self.ramSize - 16, length: 64, flags: 4, next: 0)
        driver.makeAvailable(queue: 0, head: 0)
        expectNeedsReset("an indirect table past the end of RAM", mentioning: "outside guest RAM")
    }

    @Test func ringsOutsideRAMAtDriverOK() {
        driver.setUpQueue(0, layout: Virtqueue.Layout(size: 8, descriptorTable: Self.ramSize, availableRing: 0x100, usedRing: 0x200))
        #expect(!driver.start())
        expectNeedsReset("a descriptor table past the end of RAM", mentioning: "outside guest RAM")
    }

    @Test func queueSizeThatIsNotAPowerOfTwo() {
        driver.setUpQueue(0, layout: Virtqueue.Layout(size: 6, descriptorTable: 0x1000, availableRing: 0x2000, usedRing: 0x3000))
        #expect(!driver.start())
        expectNeedsReset("a queue of 6", mentioning: "power of two")
    }

    @Test func queueLargerThanTheMaximum() {
        driver.setUpQueue(0, layout: Virtqueue.Layout(size: 32, descriptorTable: 0x1000, availableRing: 0x2000, usedRing: 0x3000))
        #expect(!driver.start())
        expectNeedsReset("a queue of 32 where 16 is the maximum", mentioning: "power of two from 1 to 16")
    }

    @Test func misalignedRing() {
        driver.setUpQueue(0, layout: Virtqueue.Layout(size: 8, descriptorTable: 0x1001, availableRing: 0x2000, usedRing: 0x3000))
        #expect(!driver.start())
        expectNeedsReset("a descriptor table at an odd address", mentioning: "aligned")
    }

    @Test func notifyingQueuesThatDoNotExist() {
        started()
        for index: UInt32 in [1, 16, 0xffff, 0xffff_ffff] { driver.write(0x50, index) }
        transport.processQueue(7)
        transport.processQueue(-1)
        #expect(driver.status & 0x40 == 0)
        #expect(transport.isActive)
    }

    @Test func garbageAtEveryRegisterAndWidth() {
        started()
        for offset in stride(from: UInt64(0), to: 0x100, by: 1) {
            for size in [1, 2, 4, 8] {
                _ = transport.write(offset: offset, size: size, value: 0xdead_beef_dead_beef)
                _ = transport.read(offset: offset, size: size)
            }
        }
        // Whatever state that left, the device answers and a reset recovers it.
        #expect(driver.negotiate())
        driver.setUpQueue(0, size: 8)
        #expect(driver.start())
        let (_, writable) = driver.submit(queue: 0, [.readable([5]), .writable(1)])
        driver.notify(queue: 0)
        #expect(driver.bytes(at: writable[0], count: 1) == [5])
    }
}
