import GuestMemory
import Testing
import Virtio
import VirtioDevices
import VirtioTestDriver

@Suite struct VirtioEntropyTests {
    @Test func buffersComeBackFullOfRandomBytes() throws {
        let memory = try GuestMemory(size: 1 << 20).view
        let device = VirtioEntropy()
        let transport = try VirtioMMIOTransport(device: device, memory: memory, interrupt: nil, eventLoop: nil)
        let driver = VirtioTestDriver(transport: transport, memory: memory)
        #expect(driver.negotiate())
        driver.setUpQueue(0, size: 8)
        #expect(driver.start())
        let (_, first) = driver.submit(queue: 0, [.writable(64)])
        let (_, second) = driver.submit(queue: 0, [.writable(16), .writable(48)])
        driver.notify(queue: 0)
        let used = driver.takeUsed(queue: 0)
        #expect(used.map(\.length) == [64, 64])
        let a = driver.bytes(at: first[0], count: 64)
        let b = driver.bytes(at: second[0], count: 16) + driver.bytes(at: second[1], count: 48)
        #expect(a != b)
        #expect(Set(a).count > 16, "64 random bytes have many distinct values; the fill pattern 0xcc has one")
        #expect(device.bytesDelivered == 128)
    }
}
