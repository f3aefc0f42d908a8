import Devices
import Testing
import VMCore

@Suite struct PortIOBusTests {
    @Test func registrationRejectsZeroLength() {
        let bus = PortIOBus()
        #expect(throws: BusError.zeroLength(base: 0x3f8)) {
            try bus.register(RecordingPortDevice(), at: 0x3f8, length: 0)
        }
    }

    @Test func registrationRejectsRangesPastTheLastPort() throws {
        let bus = PortIOBus()
        #expect(throws: BusError.wrapsAround(base: 0xfff8, length: 9, lastAddress: 0xffff)) {
            try bus.register(RecordingPortDevice(), at: 0xfff8, length: 9)
        }
        // Ending exactly on 0xffff is allowed.
        try bus.register(RecordingPortDevice(), at: 0xfff8, length: 8)
    }

    @Test func registrationRejectsOverlapWithTheExactRanges() throws {
        let bus = PortIOBus()
        try bus.register(RecordingPortDevice(), at: 0x3f8, length: 8)
        #expect(throws: BusError.overlap(requested: 0x3f8...0x3f8, existing: 0x3f8...0x3ff)) {
            try bus.register(RecordingPortDevice(), at: 0x3f8, length: 1)
        }
        #expect(throws: BusError.overlap(requested: 0x3f0...0x3f8, existing: 0x3f8...0x3ff)) {
            try bus.register(RecordingPortDevice(), at: 0x3f0, length: 9)
        }
        #expect(throws: BusError.overlap(requested: 0x3ff...0x400, existing: 0x3f8...0x3ff)) {
            try bus.register(RecordingPortDevice(), at: 0x3ff, length: 2)
        }
        #expect(throws: BusError.overlap(requested: 0x300...0x4ff, existing: 0x3f8...0x3ff)) {
            try bus.register(RecordingPortDevice(), at: 0x300, length: 0x200)
        }
    }

    @Test func errorDescriptionsNameTheRanges() {
        #expect(
            BusError.overlap(requested: 0x3f0...0x3f8, existing: 0x3f8...0x3ff).description
                == "range 0x3f0...0x3f8 overlaps the registered range 0x3f8...0x3ff")
        #expect(BusError.zeroLength(base: 0x80).description == "cannot register a zero-length range at 0x80")
        #expect(
            BusError.wrapsAround(base: 0xfff8, length: 9, lastAddress: 0xffff).description
                == "range at 0xfff8 of length 0x9 runs past the end of the address space (0xffff)")
    }

    @Test func adjacentRangesAreAcceptedAndEachGetsItsOwnOffsets() throws {
        let bus = PortIOBus()
        let low = RecordingPortDevice(readValue: 0x100)
        let middle = RecordingPortDevice(readValue: 0x200)
        let high = RecordingPortDevice(readValue: 0x300)
        // Registered out of order, to exercise the sorted insert.
        try bus.register(high, at: 0x3f8, length: 8)
        try bus.register(low, at: 0x3e8, length: 8)
        try bus.register(middle, at: 0x3f0, length: 8)

        #expect(bus.read(port: 0x3ef, size: 2) == BusReadResult(value: 0x107, unclaimed: .no))
        #expect(bus.read(port: 0x3f0, size: 2) == BusReadResult(value: 0x200, unclaimed: .no))
        #expect(bus.read(port: 0x3ff, size: 2) == BusReadResult(value: 0x307, unclaimed: .no))
        #expect(low.accesses == [.read(offset: 7, size: 2)])
        #expect(middle.accesses == [.read(offset: 0, size: 2)])
        #expect(high.accesses == [.read(offset: 7, size: 2)])
        #expect(bus.unclaimedReads == 0)
    }

    @Test func devicesAtBothEndsOfTheSpaceAreReachable() throws {
        let bus = PortIOBus()
        let first = RecordingPortDevice(readValue: 0x11)
        let last = RecordingPortDevice(readValue: 0x22)
        try bus.register(first, at: 0, length: 1)
        try bus.register(last, at: 0xffff, length: 1)
        #expect(bus.read(port: 0, size: 1).value == 0x11)
        #expect(bus.read(port: 0xffff, size: 1).value == 0x22)
        #expect(bus.read(port: 1, size: 1).unclaimed == .firstTime)
    }

    @Test func deviceReadsAreMaskedToTheAccessSize() throws {
        let bus = PortIOBus()
        try bus.register(RecordingPortDevice(readValue: 0x1122_3344_5566_7788), at: 0x60, length: 1)
        #expect(bus.read(port: 0x60, size: 1).value == 0x88)
        #expect(bus.read(port: 0x60, size: 2).value == 0x7788)
        #expect(bus.read(port: 0x60, size: 4).value == 0x5566_7788)
    }

    @Test func writesReachTheDeviceMaskedAndReturnItsRequest() throws {
        let bus = PortIOBus()
        let device = RecordingPortDevice(request: .reset)
        try bus.register(device, at: 0x64, length: 1)
        #expect(bus.write(port: 0x64, size: 1, value: 0xabfe) == BusWriteResult(request: .reset, unclaimed: .no))
        #expect(device.accesses == [.write(offset: 0, size: 1, value: 0xfe)])
    }

    @Test(arguments: [(1, UInt64(0xff)), (2, 0xffff), (4, 0xffff_ffff)])
    func unclaimedReadsAreAllOnesForTheSize(size: Int, expected: UInt64) {
        let bus = PortIOBus()
        #expect(bus.read(port: 0x1234, size: size).value == expected)
    }

    @Test func unclaimedPortsAreReportedFirstTimeThenAgain() throws {
        let bus = PortIOBus()
        try bus.register(RecordingPortDevice(), at: 0x3f8, length: 8)

        #expect(bus.read(port: 0x2f8, size: 1) == BusReadResult(value: 0xff, unclaimed: .firstTime))
        #expect(bus.read(port: 0x2f8, size: 1) == BusReadResult(value: 0xff, unclaimed: .again))
        // Reads and writes share the record: the port has been missed already.
        #expect(bus.write(port: 0x2f8, size: 1, value: 0x41) == BusWriteResult(request: nil, unclaimed: .again))
        // A neighbouring port is news, as are ports at both ends of a bitset word.
        #expect(bus.write(port: 0x2f9, size: 1, value: 0) == BusWriteResult(request: nil, unclaimed: .firstTime))
        #expect(bus.read(port: 0xffff, size: 1).unclaimed == .firstTime)
        #expect(bus.read(port: 0xffc0, size: 1).unclaimed == .firstTime)
        #expect(bus.read(port: 0xffff, size: 1).unclaimed == .again)
        // Claimed ports are never reported.
        #expect(bus.read(port: 0x3f8, size: 1).unclaimed == .no)

        #expect(bus.unclaimedReads == 5)
        #expect(bus.unclaimedWrites == 2)
    }

    @Test func stringWriteSplitsIntoSingleWritesInOrder() throws {
        let bus = PortIOBus()
        let device = RecordingPortDevice()
        try bus.register(device, at: 0x3f8, length: 8)

        let bytes: [UInt8] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c]
        let result = bus.writeString(port: 0x3f8, size: 2, count: 6, data: IOData(bytes: bytes))
        #expect(result == BusWriteResult(request: nil, unclaimed: .no))
        #expect(
            device.accesses == [
                .write(offset: 0, size: 2, value: 0x0201), .write(offset: 0, size: 2, value: 0x0403),
                .write(offset: 0, size: 2, value: 0x0605), .write(offset: 0, size: 2, value: 0x0807),
                .write(offset: 0, size: 2, value: 0x0a09), .write(offset: 0, size: 2, value: 0x0c0b),
            ])
    }

    @Test func shortStringWriteFromInlineData() throws {
        let bus = PortIOBus()
        let device = RecordingPortDevice()
        try bus.register(device, at: 0x80, length: 1)
        _ = bus.writeString(port: 0x80, size: 1, count: 3, data: IOData(bytes: [0x61, 0x62, 0x63]))
        #expect(
            device.accesses == [
                .write(offset: 0, size: 1, value: 0x61), .write(offset: 0, size: 1, value: 0x62),
                .write(offset: 0, size: 1, value: 0x63),
            ])
    }

    @Test func stringWriteStopsAtTheFirstRequest() throws {
        let bus = PortIOBus()
        let device = RecordingPortDevice(request: .exit(status: 3))
        try bus.register(device, at: 0xf4, length: 4)
        let result = bus.writeString(port: 0xf4, size: 1, count: 4, data: IOData(bytes: [3, 4, 5, 6]))
        #expect(result == BusWriteResult(request: .exit(status: 3), unclaimed: .no))
        #expect(device.accesses == [.write(offset: 0, size: 1, value: 3)])
    }

    @Test func unclaimedStringWriteIsReportedOnceAndCountedPerElement() {
        let bus = PortIOBus()
        let data = IOData(bytes: [1, 2, 3, 4])
        #expect(bus.writeString(port: 0x500, size: 1, count: 4, data: data).unclaimed == .firstTime)
        #expect(bus.writeString(port: 0x500, size: 1, count: 4, data: data).unclaimed == .again)
        #expect(bus.unclaimedWrites == 8)
    }

    @Test func shortStringReadIsAssembledInOrder() throws {
        let bus = PortIOBus()
        let device = RecordingPortDevice()
        device.scriptedReads = [0xa1, 0xb2, 0xc3, 0xd4]
        try bus.register(device, at: 0x1f0, length: 8)
        let result = bus.readString(port: 0x1f0, size: 2, count: 4)
        #expect(result.unclaimed == .no)
        #expect(result.data == IOData(bytes: [0xa1, 0x00, 0xb2, 0x00, 0xc3, 0x00, 0xd4, 0x00]))
        #expect(device.accesses == Array(repeating: .read(offset: 0, size: 2), count: 4))
    }

    @Test func longStringReadIsAssembledInOrder() throws {
        let bus = PortIOBus()
        let device = RecordingPortDevice()
        device.scriptedReads = [0x0403_0201, 0x0807_0605, 0x0c0b_0a09]
        try bus.register(device, at: 0x1f0, length: 8)
        let result = bus.readString(port: 0x1f0, size: 4, count: 3)
        #expect(result.data.bytes == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
        #expect(device.accesses.count == 3)
    }

    @Test func unclaimedStringReadIsAllOnes() {
        let bus = PortIOBus()
        let result = bus.readString(port: 0x1f0, size: 2, count: 5)
        let allOnes = IOData(bytes: [UInt8](repeating: 0xff, count: 10))
        #expect(result == BusStringReadResult(data: allOnes, unclaimed: .firstTime))
        #expect(bus.readString(port: 0x1f0, size: 1, count: 2).unclaimed == .again)
        #expect(bus.unclaimedReads == 7)
    }

    @Test func emptyStringAccessesTouchNothing() throws {
        let bus = PortIOBus()
        let device = RecordingPortDevice()
        try bus.register(device, at: 0x1f0, length: 8)
        #expect(bus.readString(port: 0x1f0, size: 1, count: 0).data.count == 0)
        #expect(bus.writeString(port: 0x1f0, size: 1, count: 0, data: IOData(bytes: [])).request == nil)
        #expect(device.accesses.isEmpty)
    }

    @Test func stringAccessesWithImpossibleSizesDoNothing() throws {
        let bus = PortIOBus()
        let device = RecordingPortDevice()
        try bus.register(device, at: 0x1f0, length: 8)
        let data = IOData(bytes: [UInt8](repeating: 1, count: 32))
        let result = bus.writeString(port: 0x1f0, size: 16, count: 2, data: data)
        #expect(result == BusWriteResult(request: nil, unclaimed: .no))
        #expect(bus.readString(port: 0x1f0, size: 16, count: 2).data.count == 0)
        #expect(device.accesses.isEmpty)
    }
}
