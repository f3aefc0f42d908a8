import GuestMemory
import Testing
import VMCore
import Virtio
import VirtioTestDriver

@Suite struct VirtioMMIOTransportTests {
    let memory: GuestMemoryView
    let device = EchoDevice()
    let interrupt = CountingInterrupt()
    let transport: VirtioMMIOTransport
    let driver: VirtioTestDriver

    init() throws {
        memory = try GuestMemory(size: 1 << 20).view
        transport = try VirtioMMIOTransport(device: device, memory: memory, interrupt: interrupt, eventLoop: nil)
        driver = VirtioTestDriver(transport: transport, memory: memory)
    }

    @Test func identificationRegisters() {
        #expect(driver.read(0x000) == 0x7472_6976)
        #expect(driver.read(0x004) == 2)
        #expect(driver.read(0x008) == 3)
        #expect(driver.read(0x00c) == 0x4d4d_5653)
        driver.write(0x030, 0)
        #expect(driver.read(0x034) == 16)
        driver.write(0x030, 1)
        #expect(driver.read(0x034) == 0, "a queue the device does not have has maximum size 0")
        #expect(driver.read(0x0b0) == 0xffff_ffff, "no shared memory regions")
    }

    @Test func offeredFeaturesIncludeTheTransportsAndTheDevices() {
        driver.write(0x014, 0)
        let low = driver.read(0x010)
        driver.write(0x014, 1)
        let high = driver.read(0x010)
        #expect(low == (1 << 3) | (1 << 28) | (1 << 29))
        #expect(high == 1, "VERSION_1")
        driver.write(0x014, 2)
        #expect(driver.read(0x010) == 0)
    }

    @Test func registersAreThirtyTwoBitOnly() {
        #expect(transport.read(offset: 0, size: 2) == 0)
        #expect(transport.read(offset: 2, size: 4) == 0)
        #expect(transport.read(offset: 0, size: 8) == 0)
        _ = transport.write(offset: 0x70, size: 1, value: 1)
        #expect(driver.status == 0, "a byte write to Status is ignored")
    }

    @Test func featuresWithoutVersion1AreRefused() {
        #expect(!driver.negotiate(VirtioFeatures(bit: 3)))
        #expect(driver.status & 8 == 0)
        #expect(!driver.start())
        #expect(device.activations == 0)
    }

    @Test func featuresTheDeviceDidNotOfferAreRefused() {
        #expect(!driver.negotiate([.version1, VirtioFeatures(bit: 5)]))
    }

    @Test func requestsTravelThroughTheQueueAndRaiseTheInterrupt() throws {
        #expect(driver.negotiate([.version1]))
        driver.setUpQueue(0, size: 8)
        #expect(driver.start())
        #expect(device.activations == 1)
        let (head, writable) = driver.submit(queue: 0, [.readable(Array("hello".utf8)), .writable(5)])
        driver.notify(queue: 0)
        let used = driver.takeUsed(queue: 0)
        #expect(used.count == 1)
        #expect(used.first?.id == UInt32(head))
        #expect(used.first?.length == 5)
        #expect(driver.bytes(at: writable[0], count: 5) == Array("hello".utf8))
        #expect(interrupt.count == 1)
        #expect(driver.read(0x060) == 1, "used-buffer interrupt pending")
        driver.write(0x064, 1)
        #expect(driver.read(0x060) == 0)
    }

    @Test func indirectChainsAreFollowed() {
        #expect(driver.negotiate())
        driver.setUpQueue(0, size: 8)
        #expect(driver.start())
        let (_, writable) = driver.submit(queue: 0, [.readable([1, 2]), .readable([3]), .writable(2), .writable(1)], indirect: true)
        driver.notify(queue: 0)
        #expect(driver.takeUsed(queue: 0).first?.length == 3)
        #expect(driver.bytes(at: writable[0], count: 2) == [1, 2])
        #expect(driver.bytes(at: writable[1], count: 1) == [3])
    }

    @Test func eventIndexSuppressesInterruptsTheDriverDidNotAskFor() throws {
        #expect(driver.negotiate())
        driver.setUpQueue(0, size: 8)
        #expect(driver.start())
        let layout = try #require(driver.queues[0]).layout
        // used_event = 1: interrupt only once the used index passes 1.
        try memory.writeInteger(UInt16(1), at: GuestAddress(layout.availableRing + 4 + 2 * 8))
        driver.submit(queue: 0, [.readable([1]), .writable(1)])
        driver.notify(queue: 0)
        #expect(interrupt.count == 0, "used index 1 has not passed used_event 1")
        driver.submit(queue: 0, [.readable([2]), .writable(1)])
        driver.notify(queue: 0)
        #expect(interrupt.count == 1)
        let availableEvent: UInt16 = try memory.readInteger(at: GuestAddress(layout.usedRing + 4 + 8 * 8))
        #expect(availableEvent == 2, "the device asks to be notified from the next entry on")
    }

    @Test func noInterruptFlagIsHonouredWithoutEventIndex() throws {
        #expect(driver.negotiate([.version1]))
        driver.setUpQueue(0, size: 8)
        #expect(driver.start())
        let layout = try #require(driver.queues[0]).layout
        try memory.writeInteger(UInt16(1), at: GuestAddress(layout.availableRing))
        driver.submit(queue: 0, [.readable([1]), .writable(1)])
        driver.notify(queue: 0)
        #expect(interrupt.count == 0)
        #expect(driver.takeUsed(queue: 0).count == 1)
    }

    @Test func configurationSpaceAtEveryWidth() {
        #expect(driver.configuration(offset: 0, size: 1) == 1)
        #expect(driver.configuration(offset: 1, size: 2) == 0x0302)
        #expect(driver.configuration(offset: 0, size: 4) == 0x0403_0201)
        #expect(driver.configuration(offset: 0, size: 8) == 0x0807_0605_0403_0201)
        #expect(driver.configuration(offset: 6, size: 4) == 0, "past the end reads 0")
        #expect(driver.configuration(offset: 0x1000, size: 4) == 0)
        _ = transport.write(offset: 0x100 + 7, size: 2, value: 0xffff)
        #expect(device.configurationWrites.isEmpty, "a write past the end is dropped")
        _ = transport.write(offset: 0x100 + 2, size: 2, value: 0xbbaa)
        #expect(device.configuration[2...3] == [0xaa, 0xbb])
        _ = transport.write(offset: 0x100, size: 3, value: 0)
        _ = transport.write(offset: 0x100, size: 16, value: 0)
        #expect(device.configurationWrites.count == 2, "3-byte and 16-byte writes go through and are dropped respectively")
    }

    @Test func configurationChangeBumpsTheGenerationAndInterrupts() {
        let before = driver.read(0x0fc)
        transport.configurationChanged()
        #expect(driver.read(0x0fc) == before &+ 1)
        #expect(driver.read(0x060) == 2)
        #expect(interrupt.count == 1)
    }

    @Test func resetStopsTheDeviceAndClearsTheQueues() {
        #expect(driver.negotiate())
        driver.setUpQueue(0, size: 8)
        #expect(driver.start())
        driver.write(0x070, 0)
        #expect(device.resets == 1)
        #expect(driver.status == 0)
        #expect(!transport.isActive)
        driver.write(0x030, 0)
        #expect(driver.read(0x044) == 0)
        #expect(driver.read(0x038) == 0)
    }

    @Test func queueSetupIsFrozenOnceReadyOrRunning() {
        #expect(driver.negotiate())
        driver.setUpQueue(0, size: 8)
        driver.write(0x038, 4)
        #expect(driver.read(0x038) == 8, "QueueNum of a ready queue does not change")
        #expect(driver.start())
        driver.write(0x044, 0)
        #expect(driver.read(0x044) == 1, "QueueReady does not change while running")
    }

    @Test func stateRoundTripsAndRestoresARunningQueue() throws {
        #expect(driver.negotiate())
        driver.setUpQueue(0, size: 8)
        #expect(driver.start())
        driver.submit(queue: 0, [.readable([7]), .writable(1)])
        driver.notify(queue: 0)
        let saved = transport.state
        let other = EchoDevice()
        let restored = try VirtioMMIOTransport(device: other, memory: memory, interrupt: nil, eventLoop: nil)
        try restored.restore(saved)
        #expect(restored.isActive)
        #expect(other.activations == 1)
        #expect(restored.state == saved)
        // The restored device continues where the first left off.
        let next = VirtioTestDriver(transport: restored, memory: memory, firstFreeAddress: driver.nextFree)
        next.setUpQueueState(from: driver, queue: 0)
        let (_, writable) = next.submit(queue: 0, [.readable([9]), .writable(1)])
        next.notify(queue: 0)
        #expect(next.bytes(at: writable[0], count: 1) == [9])
    }
}
