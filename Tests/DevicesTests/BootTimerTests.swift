import Devices
import Testing
import VMCore

@Suite struct BootTimerTests {
    /// A clock the test sets; the timer reads it at creation and on each magic write.
    final class FakeClock {
        var now = BootTimer.Sample(wallMicroseconds: 1_000_000, cpuMicroseconds: 50_000)
    }

    @Test func theMagicByteReportsTheTimeSinceTheStartInFirecrackersWords() {
        let clock = FakeClock()
        var lines: [String] = []
        let timer = BootTimer(clock: { clock.now }, report: { lines.append($0.description) })
        let bus = MMIOBus()
        #expect(throws: Never.self) { try bus.register(timer, at: GuestAddress(0xd000_0000), length: BootTimer.windowSize) }
        clock.now = BootTimer.Sample(wallMicroseconds: 1_004_213, cpuMicroseconds: 53_920)
        _ = bus.write(address: GuestAddress(0xd000_0000), size: 1, value: 123)
        #expect(lines == ["Guest-boot-time =   4213 us 4 ms,   3920 CPU us 3 CPU ms"])
        #expect(timer.reports == [BootTimer.Report(wallMicroseconds: 4213, cpuMicroseconds: 3920)])

        clock.now = BootTimer.Sample(wallMicroseconds: 3_345_678, cpuMicroseconds: 1_290_000)
        _ = bus.write(address: GuestAddress(0xd000_0000), size: 1, value: 123)
        #expect(lines.last == "Guest-boot-time = 2345678 us 2345 ms, 1240000 CPU us 1240 CPU ms")
    }

    @Test func otherValuesWidthsAndOffsetsAreIgnored() {
        let clock = FakeClock()
        var count = 0
        let timer = BootTimer(clock: { clock.now }, report: { _ in count += 1 })
        #expect(timer.write(offset: 0, size: 1, value: 122) == nil)
        #expect(timer.write(offset: 0, size: 2, value: 123) == nil)
        #expect(timer.write(offset: 0, size: 4, value: 123) == nil)
        #expect(timer.write(offset: 1, size: 1, value: 123) == nil)
        #expect(timer.read(offset: 0, size: 1) == 0)
        #expect(count == 0 && timer.reports.isEmpty)
        // Only the low byte of a one-byte write counts.
        #expect(timer.write(offset: 0, size: 1, value: 0x17b) == nil)
        #expect(count == 1)
    }

    @Test func aClockThatGoesBackReportsZeroRatherThanTrapping() {
        let clock = FakeClock()
        let timer = BootTimer(clock: { clock.now }, report: { _ in })
        clock.now = BootTimer.Sample(wallMicroseconds: 0, cpuMicroseconds: 0)
        _ = timer.write(offset: 0, size: 1, value: 123)
        #expect(timer.reports == [BootTimer.Report(wallMicroseconds: 0, cpuMicroseconds: 0)])
    }
}
