import Devices
import Testing
import VMCore

@Suite struct DebugExitPortTests {
    @Test(arguments: [(1, UInt64(0x1_2342), UInt32(0x42)), (2, 0x1_2342, 0x2342), (4, 0x1_2345_6789, 0x2345_6789)])
    func writeOfEachSizeAsksToExitWithTheValue(size: Int, value: UInt64, status: UInt32) {
        #expect(DebugExitPort().write(offset: 0, size: size, value: value) == .exit(status: status))
    }

    @Test func exitStatusZeroIsPassedThrough() {
        #expect(DebugExitPort().write(offset: 0, size: 1, value: 0) == .exit(status: 0))
    }

    @Test(arguments: [(1, UInt64(0xff)), (2, 0xffff), (4, 0xffff_ffff)])
    func readsAreAllOnes(size: Int, expected: UInt64) {
        #expect(DebugExitPort().read(offset: 0, size: size) == expected)
    }

    @Test func worksThroughTheBusAtPort0xf4() throws {
        let bus = PortIOBus()
        try bus.register(DebugExitPort(), at: 0xf4, length: DebugExitPort.portCount)
        #expect(bus.write(port: 0xf4, size: 4, value: 7) == BusWriteResult(request: .exit(status: 7), unclaimed: .no))
        #expect(bus.write(port: 0xf7, size: 1, value: 1).request == .exit(status: 1))
        #expect(bus.read(port: 0xf4, size: 4) == BusReadResult(value: 0xffff_ffff, unclaimed: .no))
        #expect(bus.read(port: 0xf8, size: 1).unclaimed == .firstTime)
    }
}
