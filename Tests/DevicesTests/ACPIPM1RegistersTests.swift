import Devices
import Testing
import VMCore

/// PM1 bits from the ACPI specification (4.8.3.1, 4.8.3.2), written out
/// independently of the implementation; kvm-unit-tests' `s3` writes the same.
private enum PM1 {
    static let wakSts: UInt16 = 1 << 15
    static let rtcSts: UInt16 = 1 << 10
    static let rtcEn: UInt16 = 1 << 10
    static let sciEn: UInt16 = 1 << 0
    static let slpEn: UInt16 = 1 << 13
    static func slpTyp(_ value: UInt16) -> UInt16 { value << 10 }
}

@Suite struct ACPIPM1RegistersTests {
    /// The registers on a bus at 0x604 (events) and 0x608 (control), as swiftvmm's FADT says.
    private func rig() throws -> (PortIOBus, ACPIPM1Registers) {
        let bus = PortIOBus()
        let pm1 = ACPIPM1Registers(suspendSleepType: 1, softOffSleepType: 5)
        try bus.register(pm1, at: 0x604, length: ACPIPM1Registers.portCount)
        return (bus, pm1)
    }

    @Test func kvmUnitTestsS3SequenceSuspendsTheMachine() throws {
        let (bus, pm1) = try rig()
        // outw(0x400, pm1a_evt_blk + 2): RTC_EN.
        #expect(bus.write(port: 0x606, size: 2, value: 0x400).request == nil)
        #expect(pm1.rtcWakeEnabled)
        // outw(0x2400, pm1a_cnt_blk): SLP_TYP 1 | SLP_EN.
        #expect(bus.write(port: 0x608, size: 2, value: 0x2400).request == .suspend)
        // SLP_EN is write-only; SLP_TYP and SCI_EN read back.
        #expect(bus.read(port: 0x608, size: 2).value == UInt64(PM1.slpTyp(1) | PM1.sciEn))
        #expect(bus.read(port: 0x604, size: 2).value == 0)
    }

    @Test func wakingByTheAlarmSetsWakeAndRTCStatusWhichWritingOnesClears() throws {
        let (bus, pm1) = try rig()
        pm1.wake(byAlarm: true)
        #expect(bus.read(port: 0x604, size: 2).value == UInt64(PM1.wakSts | PM1.rtcSts))
        #expect(bus.write(port: 0x604, size: 2, value: UInt64(PM1.rtcSts)).request == nil)
        #expect(bus.read(port: 0x604, size: 2).value == UInt64(PM1.wakSts))
        // The high byte alone, as a byte write.
        #expect(bus.write(port: 0x605, size: 1, value: UInt64(PM1.wakSts >> 8)).request == nil)
        #expect(bus.read(port: 0x604, size: 2).value == 0)
        pm1.wake(byAlarm: false)
        #expect(bus.read(port: 0x604, size: 2).value == UInt64(PM1.wakSts))
    }

    @Test func s5PowersOffAndOtherStatesWakeAtOnce() throws {
        let (bus, pm1) = try rig()
        #expect(bus.write(port: 0x608, size: 2, value: UInt64(PM1.slpTyp(5) | PM1.slpEn)).request == .powerOff)
        #expect(bus.write(port: 0x608, size: 2, value: UInt64(PM1.slpTyp(2) | PM1.slpEn)).request == nil)
        #expect(pm1.status & PM1.wakSts != 0)
        // SLP_TYP without SLP_EN does nothing.
        #expect(bus.write(port: 0x608, size: 2, value: UInt64(PM1.slpTyp(1))).request == nil)
    }

    @Test func aDwordWriteAtTheEventBlockSetsStatusAndEnableTogether() throws {
        let (bus, pm1) = try rig()
        pm1.wake(byAlarm: true)
        #expect(bus.write(port: 0x604, size: 4, value: UInt64(PM1.rtcEn) << 16 | UInt64(PM1.wakSts)).request == nil)
        #expect(pm1.status == PM1.rtcSts)
        #expect(pm1.enable == PM1.rtcEn)
        #expect(bus.read(port: 0x604, size: 4).value == UInt64(PM1.rtcEn) << 16 | UInt64(PM1.rtcSts))
    }

    @Test func stateRoundTripsAndABadControlIsRefused() throws {
        let (_, pm1) = try rig()
        pm1.wake(byAlarm: true)
        _ = pm1.write(offset: 2, size: 2, value: UInt64(PM1.rtcEn))
        let other = ACPIPM1Registers()
        try other.restore(pm1.state)
        #expect(other.state == pm1.state)
        #expect(throws: DeviceStateError.self) {
            try other.restore(ACPIPM1Registers.State(status: 0, enable: 0, control: PM1.slpEn | PM1.sciEn))
        }
        #expect(throws: DeviceStateError.self) { try other.restore(ACPIPM1Registers.State(status: 0, enable: 0, control: 0)) }
        #expect(other.state == pm1.state)
    }
}
