import Devices
import Testing
import VMCore

@Suite struct MMIOBusTests {
    @Test func registrationRejectsZeroLength() {
        let bus = MMIOBus()
        #expect(throws: BusError.zeroLength(base: 0xd000_0000)) {
            try bus.register(RecordingMMIODevice(), at: GuestAddress(0xd000_0000), length: 0)
        }
    }

    @Test func registrationRejectsWrapPastTheTopOfTheAddressSpace() throws {
        let bus = MMIOBus()
        #expect(throws: BusError.wrapsAround(base: 0xffff_ffff_ffff_f000, length: 0x1001, lastAddress: .max)) {
            try bus.register(RecordingMMIODevice(), at: GuestAddress(0xffff_ffff_ffff_f000), length: 0x1001)
        }
        // A range ending on the very last byte is fine.
        try bus.register(RecordingMMIODevice(), at: GuestAddress(0xffff_ffff_ffff_f000), length: 0x1000)
        #expect(bus.read(address: GuestAddress(.max), size: 1).unclaimed == .no)
    }

    @Test func registrationRejectsOverlapWithTheExactRanges() throws {
        let bus = MMIOBus()
        try bus.register(RecordingMMIODevice(), at: GuestAddress(0xfec0_0000), length: 0x1000)
        #expect(throws: BusError.overlap(requested: 0xfec0_0fff...0xfec0_1fff, existing: 0xfec0_0000...0xfec0_0fff)) {
            try bus.register(RecordingMMIODevice(), at: GuestAddress(0xfec0_0fff), length: 0x1001)
        }
        #expect(throws: BusError.overlap(requested: 0xfebf_f000...0xfec0_0000, existing: 0xfec0_0000...0xfec0_0fff)) {
            try bus.register(RecordingMMIODevice(), at: GuestAddress(0xfebf_f000), length: 0x1001)
        }
    }

    @Test func adjacentRangesAreAcceptedAndDispatchedWithOffsets() throws {
        let bus = MMIOBus()
        let ioapic = RecordingMMIODevice(readValue: 0x11)
        let hpet = RecordingMMIODevice(readValue: 0x22)
        try bus.register(hpet, at: GuestAddress(0xfec0_1000), length: 0x1000)
        try bus.register(ioapic, at: GuestAddress(0xfec0_0000), length: 0x1000)

        #expect(bus.read(address: GuestAddress(0xfec0_0ff8), size: 8) == BusReadResult(value: 0x11, unclaimed: .no))
        #expect(bus.write(address: GuestAddress(0xfec0_1010), size: 4, value: 0x1_dead_beef).unclaimed == .no)
        #expect(ioapic.accesses == [.read(offset: 0xff8, size: 8)])
        #expect(hpet.accesses == [.write(offset: 0x10, size: 4, value: 0xdead_beef)])
    }

    @Test(arguments: [(1, UInt64(0xff)), (2, 0xffff), (4, 0xffff_ffff), (8, 0xffff_ffff_ffff_ffff)])
    func unclaimedReadsAreAllOnesForTheSize(size: Int, expected: UInt64) {
        #expect(MMIOBus().read(address: GuestAddress(0xe000_0000), size: size).value == expected)
    }

    @Test func unclaimedAccessesAreReportedOncePerPage() {
        let bus = MMIOBus()
        #expect(bus.read(address: GuestAddress(0xe000_0000), size: 4).unclaimed == .firstTime)
        // Another address in the same 4 KiB page, read or write, is old news.
        #expect(bus.read(address: GuestAddress(0xe000_0ffc), size: 4).unclaimed == .again)
        #expect(
            bus.write(address: GuestAddress(0xe000_0010), size: 4, value: 1)
                == BusWriteResult(request: nil, unclaimed: .again))
        // The next page is news.
        #expect(bus.write(address: GuestAddress(0xe000_1000), size: 4, value: 1).unclaimed == .firstTime)
        #expect(bus.unclaimedReads == 2)
        #expect(bus.unclaimedWrites == 2)
    }
}
