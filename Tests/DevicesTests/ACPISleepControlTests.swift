import Devices
import Testing
import VMCore

/// Bits from the ACPI specification (4.8.3.7, 4.8.3.8) and ACPICA's
/// `ACPI_X_*` constants, written out independently of the implementation.
private enum Sleep {
    static func slpTyp(_ value: UInt8) -> UInt8 { value << 2 }
    static let slpEn: UInt8 = 0b0010_0000
    static let wakSts: UInt8 = 0b1000_0000
}

@Suite struct ACPISleepControlTests {
    @Test func enteringS5PowersOff() {
        let sleep = ACPISleepControl()
        #expect(sleep.write(offset: 0, size: 1, value: UInt64(Sleep.slpTyp(5) | Sleep.slpEn)) == .powerOff)
    }

    @Test func linuxExtendedSleepSequencePowersOffThroughTheBus() throws {
        // acpi_hw_extended_sleep: clear WAK_STS, then write SLP_TYP | SLP_EN.
        let bus = PortIOBus()
        try bus.register(ACPISleepControl(), at: 0x600, length: ACPISleepControl.portCount)
        #expect(bus.write(port: 0x601, size: 1, value: UInt64(Sleep.wakSts)).request == nil)
        let result = bus.write(port: 0x600, size: 1, value: UInt64(Sleep.slpTyp(5) | Sleep.slpEn))
        #expect(result == BusWriteResult(request: .powerOff, unclaimed: .no))
    }

    @Test func sleepTypeWithoutSleepEnableDoesNothingButIsReadBack() {
        let sleep = ACPISleepControl()
        #expect(sleep.write(offset: 0, size: 1, value: UInt64(Sleep.slpTyp(5))) == nil)
        #expect(sleep.lastSleepType == 5)
        // SLP_EN is write-only.
        #expect(sleep.read(offset: 0, size: 1) == UInt64(Sleep.slpTyp(5)))
    }

    @Test func theConfiguredSoftOffTypeIsTheOneThatCounts() {
        let sleep = ACPISleepControl(softOffSleepType: 7)
        #expect(sleep.softOffSleepType == 7)
        #expect(sleep.write(offset: 0, size: 1, value: UInt64(Sleep.slpTyp(5) | Sleep.slpEn)) == nil)
        #expect(sleep.write(offset: 0, size: 1, value: UInt64(Sleep.slpTyp(7) | Sleep.slpEn)) == .powerOff)
        // Only SLP_TYP's three bits are kept.
        #expect(ACPISleepControl(softOffSleepType: 0b1111_1101).softOffSleepType == 5)
    }

    @Test func otherSleepStatesWakeAtOnceSoTheGuestsSpinEnds() {
        let sleep = ACPISleepControl()
        #expect(sleep.read(offset: 1, size: 1) == 0)
        #expect(sleep.write(offset: 0, size: 1, value: UInt64(Sleep.slpTyp(1) | Sleep.slpEn)) == nil)
        #expect(sleep.wakeStatus)
        #expect(sleep.read(offset: 1, size: 1) == UInt64(Sleep.wakSts))
        // Writing 0 leaves it; writing 1 to WAK_STS clears it.
        #expect(sleep.write(offset: 1, size: 1, value: 0x7f) == nil)
        #expect(sleep.read(offset: 1, size: 1) == UInt64(Sleep.wakSts))
        #expect(sleep.write(offset: 1, size: 1, value: UInt64(Sleep.wakSts)) == nil)
        #expect(sleep.read(offset: 1, size: 1) == 0)
    }

    @Test func wideAccessesCoverBothRegisters() {
        let sleep = ACPISleepControl()
        // Control in the low byte, status in the next one.
        #expect(sleep.write(offset: 0, size: 2, value: UInt64(Sleep.slpTyp(2))) == nil)
        #expect(sleep.read(offset: 0, size: 4) == 0xffff_0008)
        #expect(sleep.write(offset: 0, size: 2, value: UInt64(Sleep.wakSts) << 8 | UInt64(Sleep.slpTyp(5) | Sleep.slpEn)) == .powerOff)
        #expect(sleep.read(offset: 2, size: 1) == 0xff)
    }

    @Test func noAccessTrapsAndOnlyPowerOffIsEverRequested() {
        #expect(sweepEveryAccess(ACPISleepControl(), length: ACPISleepControl.portCount).isSubset(of: [.powerOff]))
        // 0x34 is SLP_TYP 5 | SLP_EN in the low byte.
        #expect(ACPISleepControl().write(offset: 0, size: 8, value: 0xffff_ffff_ffff_ff34) == .powerOff)
    }
}

@Suite struct ACPIResetRegisterTests {
    @Test func theResetValueResets() {
        let register = ACPIResetRegister()
        #expect(register.resetValue == 0x06)
        #expect(register.write(offset: 0, size: 1, value: 0x06) == .reset)
    }

    @Test func otherValuesAreIgnored() {
        let register = ACPIResetRegister()
        for value: UInt64 in [0x00, 0x02, 0x04, 0x0e, 0xff] {
            #expect(register.write(offset: 0, size: 1, value: value) == nil)
        }
    }

    @Test func aConfiguredResetValueWorksThroughTheBus() throws {
        let bus = PortIOBus()
        try bus.register(ACPIResetRegister(resetValue: 0x0e), at: 0x604, length: ACPIResetRegister.portCount)
        #expect(bus.write(port: 0x604, size: 1, value: 0x06).request == nil)
        #expect(bus.write(port: 0x604, size: 1, value: 0x0e) == BusWriteResult(request: .reset, unclaimed: .no))
        #expect(bus.read(port: 0x604, size: 1).value == 0)
    }

    @Test func wideWritesUseTheLowByteAndOtherOffsetsAreInert() {
        let register = ACPIResetRegister()
        #expect(register.write(offset: 0, size: 4, value: 0xaabb_cc06) == .reset)
        #expect(register.write(offset: 1, size: 1, value: 0x06) == nil)
        #expect(register.read(offset: 0, size: 2) == 0xff00)
        #expect(register.read(offset: 1, size: 1) == 0xff)
    }

    @Test func noAccessTrapsAndOnlyResetIsEverRequested() {
        #expect(sweepEveryAccess(ACPIResetRegister(resetValue: 0xff), length: 1) == [.reset])
        #expect(sweepEveryAccess(ACPIResetRegister(resetValue: 0x42), length: 1).isEmpty)
    }
}

@Suite struct ACPISleepControlSuspendTests {
    @Test func enteringTheS3TypeSuspendsOnlyWhenOffered() {
        let withoutS3 = ACPISleepControl()
        #expect(withoutS3.write(offset: 0, size: 1, value: UInt64(1 << 2 | 0b0010_0000)) == nil)
        #expect(withoutS3.wakeStatus)
        let withS3 = ACPISleepControl(suspendSleepType: 1)
        #expect(withS3.write(offset: 0, size: 1, value: UInt64(1 << 2 | 0b0010_0000)) == .suspend)
        #expect(!withS3.wakeStatus)
        withS3.wake()
        #expect(withS3.read(offset: 1, size: 1) == 0b1000_0000)
    }
}
