import Devices
import Testing
import VMCore

/// Register indexes and bits from the MC146818A datasheet and the PC AT's
/// CMOS map, written out independently of the implementation.
private enum RTC {
    static let seconds: UInt8 = 0x00, secondsAlarm: UInt8 = 0x01
    static let minutes: UInt8 = 0x02, hours: UInt8 = 0x04, hoursAlarm: UInt8 = 0x05
    static let dayOfWeek: UInt8 = 0x06, dayOfMonth: UInt8 = 0x07, month: UInt8 = 0x08, year: UInt8 = 0x09
    static let statusA: UInt8 = 0x0a, statusB: UInt8 = 0x0b, statusC: UInt8 = 0x0c, statusD: UInt8 = 0x0d
    static let century: UInt8 = 0x32

    static let aUIP: UInt8 = 0b1000_0000
    static let bSET: UInt8 = 0b1000_0000
    static let bDM: UInt8 = 0b0000_0100
    static let b24: UInt8 = 0b0000_0010
    static let dVRT: UInt8 = 0b1000_0000
    static let nmiDisable: UInt8 = 0b1000_0000
    static let hoursPM: UInt8 = 0b1000_0000
}

/// A clock the test can move.
private final class TestClock {
    var now: RTCDateTime
    init(_ now: RTCDateTime) { self.now = now }
}

/// Friday 2025-03-07 14:05:09 UTC.
private let friday = RTCDateTime(year: 2025, month: 3, day: 7, hour: 14, minute: 5, second: 9, weekday: 6)

/// An RTC at 0x70 on a bus, read and written as Linux's CMOS_READ/CMOS_WRITE do.
private struct Rig {
    let bus = PortIOBus()
    let clock: TestClock
    let rtc: CMOSRTC

    init(_ time: RTCDateTime = friday, memorySize: UInt64 = 128 << 20) throws {
        let clock = TestClock(time)
        self.clock = clock
        rtc = CMOSRTC(memorySize: memorySize) { clock.now }
        try bus.register(rtc, at: 0x70, length: CMOSRTC.portCount)
    }

    func read(_ index: UInt8) -> UInt8 {
        #expect(bus.write(port: 0x70, size: 1, value: UInt64(index)).request == nil)
        return UInt8(truncatingIfNeeded: bus.read(port: 0x71, size: 1).value)
    }

    func write(_ index: UInt8, _ value: UInt8) {
        #expect(bus.write(port: 0x70, size: 1, value: UInt64(index)).request == nil)
        #expect(bus.write(port: 0x71, size: 1, value: UInt64(value)).request == nil)
    }
}

@Suite struct CMOSRTCTests {
    @Test func timeReadsAsBCDIn24HourModeByDefault() throws {
        let rig = try Rig()
        #expect(rig.read(RTC.statusB) == RTC.b24)
        #expect(rig.read(RTC.seconds) == 0x09)
        #expect(rig.read(RTC.minutes) == 0x05)
        #expect(rig.read(RTC.hours) == 0x14)
        #expect(rig.read(RTC.dayOfWeek) == 0x06)
        #expect(rig.read(RTC.dayOfMonth) == 0x07)
        #expect(rig.read(RTC.month) == 0x03)
        #expect(rig.read(RTC.year) == 0x25)
        #expect(rig.read(RTC.century) == 0x20)
    }

    @Test func binaryModeEncodesPlainNumbers() throws {
        let rig = try Rig()
        rig.write(RTC.statusB, RTC.b24 | RTC.bDM)
        #expect(rig.read(RTC.seconds) == 9)
        #expect(rig.read(RTC.hours) == 14)
        #expect(rig.read(RTC.year) == 25)
        #expect(rig.read(RTC.century) == 20)
        rig.clock.now.second = 59
        #expect(rig.read(RTC.seconds) == 59)
    }

    @Test(arguments: [
        // (hour, 12-hour BCD, 12-hour binary)
        (0, UInt8(0x12), UInt8(12)), (1, 0x01, 1), (11, 0x11, 11),
        (12, 0x92, 0x8c), (13, 0x81, 0x81), (23, 0x91, 0x8b),
    ])
    func twelveHourModeCountsFrom12WithThePMBit(hour: Int, bcd: UInt8, binary: UInt8) throws {
        var time = friday
        time.hour = hour
        let rig = try Rig(time)
        rig.write(RTC.statusB, 0)
        #expect(rig.read(RTC.hours) == bcd)
        rig.write(RTC.statusB, RTC.bDM)
        #expect(rig.read(RTC.hours) == binary)
        #expect(rig.read(RTC.hours) & RTC.hoursPM == (hour >= 12 ? RTC.hoursPM : 0))
    }

    @Test func everyReadAsksTheClock() throws {
        let rig = try Rig()
        #expect(rig.read(RTC.seconds) == 0x09)
        rig.clock.now = RTCDateTime(year: 1999, month: 12, day: 31, hour: 23, minute: 59, second: 58, weekday: 6)
        #expect(rig.read(RTC.seconds) == 0x58)
        #expect(rig.read(RTC.year) == 0x99)
        #expect(rig.read(RTC.century) == 0x19)
    }

    @Test func statusAHasTheDividerAndNeverShowsUIP() throws {
        let rig = try Rig()
        #expect(rig.read(RTC.statusA) == 0x26)
        rig.write(RTC.statusA, RTC.aUIP | 0x2f)
        #expect(rig.read(RTC.statusA) == 0x2f)
    }

    @Test func statusCReadsZeroAndStatusDReportsValidTime() throws {
        let rig = try Rig()
        #expect(rig.read(RTC.statusC) == 0)
        #expect(rig.read(RTC.statusD) == RTC.dVRT)
        rig.write(RTC.statusC, 0xff)
        rig.write(RTC.statusD, 0x00)
        #expect(rig.read(RTC.statusC) == 0)
        #expect(rig.read(RTC.statusD) == RTC.dVRT)
    }

    @Test func writesToTheTimeRegistersAreIgnored() throws {
        let rig = try Rig()
        // As Linux's mc146818_set_time does: SET, the fields, then clear SET.
        rig.write(RTC.statusB, RTC.b24 | RTC.bSET)
        for index in [RTC.seconds, RTC.minutes, RTC.hours, RTC.dayOfMonth, RTC.month, RTC.year, RTC.century] {
            rig.write(index, 0x01)
        }
        rig.write(RTC.statusB, RTC.b24)
        #expect(rig.read(RTC.seconds) == 0x09)
        #expect(rig.read(RTC.hours) == 0x14)
        #expect(rig.read(RTC.year) == 0x25)
        #expect(rig.read(RTC.century) == 0x20)
    }

    @Test func alarmsAndOtherBytesAreRAM() throws {
        let rig = try Rig()
        rig.write(RTC.secondsAlarm, 0x30)
        rig.write(RTC.hoursAlarm, 0xc0)
        rig.write(0x0e, 0x5a)
        rig.write(0x7f, 0xa5)
        #expect(rig.read(RTC.secondsAlarm) == 0x30)
        #expect(rig.read(RTC.hoursAlarm) == 0xc0)
        #expect(rig.read(0x0e) == 0x5a)
        #expect(rig.read(0x7f) == 0xa5)
        #expect(rig.read(0x40) == 0x00)
    }

    @Test func nmiDisableBitIsIgnoredInTheIndex() throws {
        let rig = try Rig()
        #expect(rig.read(RTC.nmiDisable | RTC.seconds) == 0x09)
        #expect(rig.rtc.index == RTC.seconds)
        rig.write(RTC.nmiDisable | 0x40, 0x77)
        #expect(rig.read(0x40) == 0x77)
    }

    @Test func indexPortReadsAllOnesAndWideAccessesSplitByPort() throws {
        let rig = try Rig()
        // outw(0x0e | 0x42 << 8, 0x70): index 0x0e, then data 0x42.
        #expect(rig.bus.write(port: 0x70, size: 2, value: 0x420e).request == nil)
        #expect(rig.rtc.index == 0x0e)
        #expect(rig.read(0x0e) == 0x42)
        #expect(rig.bus.read(port: 0x70, size: 1).value == 0xff)
        #expect(rig.bus.read(port: 0x70, size: 2).value == 0x42ff)
        #expect(rig.bus.read(port: 0x71, size: 4).value == 0xffff_ff42)
    }

    @Test func memorySizeBytesFollowQEMU() throws {
        // 32 MiB: 640 KiB base, 31 MiB extended, 16 MiB above 16 MiB.
        let rig = try Rig(memorySize: 32 << 20)
        #expect([rig.read(0x15), rig.read(0x16)] == [0x80, 0x02])
        #expect([rig.read(0x17), rig.read(0x18)] == [0x00, 0x7c])  // 31744 KiB
        #expect([rig.read(0x30), rig.read(0x31)] == [0x00, 0x7c])
        #expect([rig.read(0x34), rig.read(0x35)] == [0x00, 0x01])  // 256 x 64 KiB
        #expect([rig.read(0x5b), rig.read(0x5c), rig.read(0x5d)] == [0, 0, 0])
        // 128 MiB: extended memory no longer fits 16 bits and is capped, as QEMU does.
        let larger = try Rig(memorySize: 128 << 20)
        #expect([larger.read(0x17), larger.read(0x18)] == [0xff, 0xff])
        #expect([larger.read(0x34), larger.read(0x35)] == [0x00, 0x07])  // 1792 x 64 KiB
    }

    @Test func memoryAboveTheLowLimitIsReportedAbove4GiB() throws {
        // 8 GiB with RAM below 4 GiB ending at 3 GiB: 5 GiB above 4 GiB.
        let rig = try Rig(memorySize: 8 << 30)
        #expect([rig.read(0x17), rig.read(0x18)] == [0xff, 0xff])  // capped
        #expect([rig.read(0x34), rig.read(0x35)] == [0x00, 0xbf])  // 3056 MiB / 64 KiB
        #expect([rig.read(0x5b), rig.read(0x5c), rig.read(0x5d)] == [0x00, 0x40, 0x01])  // 81920
        let custom = CMOSRTC(memorySize: 4 << 30, lowMemoryLimit: 2 << 30) { friday }
        #expect(custom.readRegister(0x35) == 0x7f)  // 2032 MiB / 64 KiB = 0x7f00
        #expect(custom.readRegister(0x5c) == 0x80)  // 2 GiB / 64 KiB = 0x8000
    }

    @Test func tinyMemoryHasNoExtendedMemory() {
        let rtc = CMOSRTC(memorySize: 512 << 10) { friday }
        #expect(rtc.readRegister(0x15) == 0x00 && rtc.readRegister(0x16) == 0x02)  // 512 KiB
        #expect(rtc.readRegister(0x17) == 0 && rtc.readRegister(0x18) == 0)
        #expect(rtc.readRegister(0x34) == 0 && rtc.readRegister(0x35) == 0)
    }

    @Test func linuxAvoidUIPLoopSucceedsAtOnce() throws {
        // mc146818_avoid_UIP: seconds, UIP clear, seconds again, UIP clear, seconds again.
        let rig = try Rig()
        let seconds = rig.read(RTC.seconds)
        #expect(rig.read(RTC.statusA) & RTC.aUIP == 0)
        #expect(rig.read(RTC.seconds) == seconds)
        #expect(rig.read(RTC.statusA) & RTC.aUIP == 0)
        #expect(rig.read(RTC.seconds) == seconds)
    }

    @Test func outOfRangeClockValuesAndEveryAccessAreSafe() {
        let extremes = [Int.min, -1, 0, 99, 100, 12_345, Int.max]
        for value in extremes {
            let time = RTCDateTime(
                year: value, month: value, day: value, hour: value, minute: value, second: value, weekday: value)
            let rtc = CMOSRTC(memorySize: .max, lowMemoryLimit: .max) { time }
            for mode: UInt8 in [0, RTC.bDM, RTC.b24, RTC.b24 | RTC.bDM] {
                rtc.writeRegister(RTC.statusB, mode)
                for index in UInt8.min...UInt8.max {
                    _ = rtc.readRegister(index)
                }
            }
            #expect(sweepEveryAccess(rtc, length: CMOSRTC.portCount).isEmpty)
        }
        // Two-digit registers keep the last two digits.
        let farFuture = RTCDateTime(year: 12_345, month: 1, day: 1, hour: 0, minute: 0, second: 0, weekday: 1)
        let rtc = CMOSRTC(memorySize: 0) { farFuture }
        #expect(rtc.readRegister(RTC.year) == 0x45)
        #expect(rtc.readRegister(RTC.century) == 0x23)
    }
}

/// POSIX times and their UTC fields, checked against Python's `datetime`.
private let knownTimes: [(Int64, RTCDateTime)] = [
    (0, RTCDateTime(year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0, weekday: 5)),
    (951_782_400, RTCDateTime(year: 2000, month: 2, day: 29, hour: 0, minute: 0, second: 0, weekday: 3)),
    (-1, RTCDateTime(year: 1969, month: 12, day: 31, hour: 23, minute: 59, second: 59, weekday: 4)),
    (1_741_356_309, friday),
    (4_102_444_800, RTCDateTime(year: 2100, month: 1, day: 1, hour: 0, minute: 0, second: 0, weekday: 6)),
    (-62_135_596_800, RTCDateTime(year: 1, month: 1, day: 1, hour: 0, minute: 0, second: 0, weekday: 2)),
    (253_402_300_799, RTCDateTime(year: 9999, month: 12, day: 31, hour: 23, minute: 59, second: 59, weekday: 6)),
]

@Suite struct RTCDateTimeTests {
    @Test(arguments: knownTimes)
    func convertsPOSIXTimeToUTCFields(seconds: Int64, expected: RTCDateTime) {
        #expect(RTCDateTime(secondsSince1970: seconds) == expected)
    }

    @Test func extremeTimesDoNotTrap() {
        for seconds in [Int64.min, Int64.min + 1, Int64.max] {
            let time = RTCDateTime(secondsSince1970: seconds)
            #expect((1...12).contains(time.month) && (1...31).contains(time.day))
            #expect((0...23).contains(time.hour) && (1...7).contains(time.weekday))
        }
    }
}

/// The update cycle and the alarm, with a sub-second clock the test sets.
@Suite struct CMOSRTCAlarmTests {
    private final class Subsecond {
        var nanoseconds = 0
    }

    private func rig(_ time: RTCDateTime = friday) throws -> (PortIOBus, CMOSRTC, Subsecond, TestClock) {
        let bus = PortIOBus()
        let subsecond = Subsecond()
        let clock = TestClock(time)
        let rtc = CMOSRTC(memorySize: 128 << 20, subsecondClock: { subsecond.nanoseconds }) { clock.now }
        try bus.register(rtc, at: 0x70, length: CMOSRTC.portCount)
        return (bus, rtc, subsecond, clock)
    }

    private func read(_ bus: PortIOBus, _ index: UInt8) -> UInt8 {
        _ = bus.write(port: 0x70, size: 1, value: UInt64(index))
        return UInt8(truncatingIfNeeded: bus.read(port: 0x71, size: 1).value)
    }

    private func write(_ bus: PortIOBus, _ index: UInt8, _ value: UInt8) {
        _ = bus.write(port: 0x70, size: 1, value: UInt64(index))
        _ = bus.write(port: 0x71, size: 1, value: UInt64(value))
    }

    @Test func uipIsSetInTheLast2228MicrosecondsOfEachSecond() throws {
        let (bus, _, subsecond, _) = try rig()
        subsecond.nanoseconds = 0
        #expect(read(bus, RTC.statusA) & RTC.aUIP == 0)
        subsecond.nanoseconds = 997_771_999
        #expect(read(bus, RTC.statusA) & RTC.aUIP == 0)
        subsecond.nanoseconds = 997_772_000
        #expect(read(bus, RTC.statusA) == RTC.aUIP | 0x26)
        subsecond.nanoseconds = 999_999_999
        #expect(read(bus, RTC.statusA) & RTC.aUIP != 0)
    }

    @Test func dontCareAlarmFiresNextSecondAndStatusCReportsItOnce() throws {
        let (bus, rtc, _, clock) = try rig()
        // kvm-unit-tests' s3: every alarm byte "don't care", then AIE.
        #expect(read(bus, RTC.statusC) == 0)
        for index in [RTC.secondsAlarm, 0x03, RTC.hoursAlarm] { write(bus, index, 0xc0) }
        #expect(rtc.secondsUntilAlarm(after: clock.now) == nil)  // AIE still clear
        write(bus, RTC.statusB, read(bus, RTC.statusB) | 0x20)
        #expect(rtc.alarmInterruptEnabled)
        #expect(rtc.secondsUntilAlarm(after: clock.now) == 1)
        rtc.alarmFired()
        // IRQF | AF, cleared by the read.
        #expect(read(bus, RTC.statusC) == 0b1010_0000)
        #expect(read(bus, RTC.statusC) == 0)
    }

    @Test func anExactAlarmFiresAtThatTimeOfDayInBCDAndBinary() throws {
        let (bus, rtc, _, clock) = try rig()  // 14:05:09
        write(bus, RTC.statusB, RTC.b24 | 0x20)
        write(bus, RTC.secondsAlarm, 0x30)  // BCD 30
        write(bus, 0x03, 0x05)
        write(bus, RTC.hoursAlarm, 0x14)
        #expect(rtc.secondsUntilAlarm(after: clock.now) == 21)
        write(bus, RTC.hoursAlarm, 0x13)  // 13:05:30 tomorrow
        #expect(rtc.secondsUntilAlarm(after: clock.now) == 86_400 - 3600 + 21)
        write(bus, RTC.statusB, RTC.b24 | RTC.bDM | 0x20)
        write(bus, RTC.hoursAlarm, 0xc0)
        write(bus, 0x03, 0xff)
        write(bus, RTC.secondsAlarm, 10)  // binary 10: the next second
        #expect(rtc.secondsUntilAlarm(after: clock.now) == 1)
    }
}
