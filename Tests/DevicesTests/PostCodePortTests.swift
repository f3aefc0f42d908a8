import Devices
import Testing
import VMCore

@Suite struct PostCodePortTests {
    @Test func readsAllOnesBeforeAnyCode() {
        let port = PostCodePort()
        #expect(port.lastCode == nil)
        #expect(port.read(offset: 0, size: 1) == 0xff)
    }

    @Test func remembersTheLastCodeAndReadsItBack() throws {
        let bus = PortIOBus()
        let port = PostCodePort()
        try bus.register(port, at: 0x80, length: 1)
        #expect(bus.write(port: 0x80, size: 1, value: 0x12) == BusWriteResult(request: nil, unclaimed: .no))
        #expect(bus.write(port: 0x80, size: 1, value: 0x34).request == nil)
        #expect(port.lastCode == 0x34)
        #expect(port.writeCount == 2)
        #expect(bus.read(port: 0x80, size: 1).value == 0x34)
        // Only the low byte is latched; the rest of a wide read is undriven.
        #expect(bus.read(port: 0x80, size: 2).value == 0xff34)
    }
}
