import Devices
import Testing
import VMCore

@Suite struct DebugConsolePortTests {
    @Test func bytesReachTheSinkUnchanged() {
        let output = SerialBufferOutput()
        let console = DebugConsolePort(output: output)
        let bytes: [UInt8] = [0x48, 0x69, 0x0a, 0x00, 0xff, 0x0d, 0x1b]
        for byte in bytes {
            #expect(console.write(offset: 0, size: 1, value: UInt64(byte)) == nil)
        }
        #expect(output.bytes == bytes)
    }

    @Test func readsReturnThePortNumberSoGuestsCanDetectIt() {
        let console = DebugConsolePort(output: SerialBufferOutput())
        #expect(console.read(offset: 0, size: 1) == 0xe9)
        #expect(console.read(offset: 0, size: 2) == 0xffe9)
        #expect(console.read(offset: 0, size: 4) == 0xffff_ffe9)
    }

    @Test func wideWritesSendOnlyTheLowByte() {
        let output = SerialBufferOutput()
        let console = DebugConsolePort(output: output)
        _ = console.write(offset: 0, size: 2, value: 0x4241)
        _ = console.write(offset: 0, size: 4, value: 0x4443_4243)
        #expect(output.text == "AC")
    }

    @Test func worksThroughTheBusAtPort0xe9() throws {
        let bus = PortIOBus()
        let output = SerialBufferOutput()
        try bus.register(DebugConsolePort(output: output), at: 0xe9, length: DebugConsolePort.portCount)
        for byte in "ok\n".utf8 {
            #expect(bus.write(port: 0xe9, size: 1, value: UInt64(byte)) == BusWriteResult(request: nil, unclaimed: .no))
        }
        #expect(output.text == "ok\n")
        #expect(bus.read(port: 0xe9, size: 1) == BusReadResult(value: 0xe9, unclaimed: .no))
    }

    @Test func noAccessTrapsAndOtherOffsetsAreInert() {
        let output = SerialBufferOutput()
        let console = DebugConsolePort(output: output)
        #expect(sweepEveryAccess(console, length: DebugConsolePort.portCount).isEmpty)
        // Only offset 0 with a non-zero size writes: 8 values for each of sizes 1-8.
        #expect(output.bytes.count == 8 * 8)
        #expect(console.read(offset: 1, size: 1) == 0xff)
    }
}
