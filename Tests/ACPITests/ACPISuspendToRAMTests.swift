import ACPI
import Testing
import VMCore

/// The tables with S3 offered: `\_S3_`, the FACS and the PM1a blocks, at the
/// offsets of ACPI 6.5 (5.2.9 and 5.2.10) as kvm-unit-tests' `acpi.h` reads them.
@Suite struct ACPISuspendToRAMTests {
    private func suspendTables(_ s3: SuspendToRAM = SuspendToRAM()) throws -> ACPITables {
        var configuration = ACPIConfiguration(vCPUCount: 2)
        configuration.suspendToRAM = s3
        return try ACPITableBuilder.build(configuration, at: base)
    }

    @Test func withoutS3ThereIsNoFACSAndNoPM1Block() throws {
        let built = try tables()
        #expect(built[signature: "FACS"] == nil)
        let fadt = try table("FACP", in: built).bytes
        #expect(fadt.le32(at: 36) == 0)
        #expect(fadt.le32(at: 56) == 0)
        #expect(fadt.le32(at: 64) == 0)
    }

    @Test func theFADTPointsAtA64ByteAlignedFACSAfterTheMADT() throws {
        let built = try suspendTables()
        #expect(built.tables.map(\.signature) == ["RSD PTR ", "XSDT", "RSDT", "FACP", "DSDT", "APIC", "FACS"])
        let facs = try table("FACS", in: built)
        #expect(facs.address.rawValue % 64 == 0)
        let madt = try table("APIC", in: built)
        #expect(facs.address.rawValue >= madt.range.upperBound)
        #expect(built.base.rawValue + built.size == facs.range.upperBound)
        let fadt = try table("FACP", in: built).bytes
        #expect(UInt64(fadt.le32(at: 36)) == facs.address.rawValue)  // FIRMWARE_CTRL
        #expect(fadt.le64(at: 132) == 0)  // X_FIRMWARE_CTRL: only the 32-bit field
        #expect(fadt.byteSum == 0)
        // The FACS: signature, length 64, waking vectors zero, version 2.
        #expect(facs.bytes.count == 64)
        #expect(facs.bytes.ascii(0, 4) == "FACS")
        #expect(facs.bytes.le32(at: 4) == 64)
        #expect(facs.bytes.le32(at: 12) == 0)
        #expect(facs.bytes.le64(at: 24) == 0)
        #expect(facs.bytes[32] == 2)
        #expect(ACPITableBuilder.facsWakingVectorOffset == 12)
        #expect(built.image.slice(Int(facs.address.rawValue - base.rawValue), 4) == Array("FACS".utf8))
    }

    @Test func theFADTGivesThePM1aBlocksAndTheirLengths() throws {
        let fadt = try table("FACP", in: suspendTables(SuspendToRAM(pm1EventPort: 0xb000, pm1ControlPort: 0xb004))).bytes
        #expect(fadt.le32(at: 56) == 0xb000)  // PM1a_EVT_BLK
        #expect(fadt.le32(at: 64) == 0xb004)  // PM1a_CNT_BLK
        #expect(fadt[88] == 4)  // PM1_EVT_LEN
        #expect(fadt[89] == 2)  // PM1_CNT_LEN
        // Not hardware-reduced (flag bit 20 clear: ACPICA ignores the FACS of a
        // hardware-reduced FADT), with the SCI on IRQ 9 and the sleep registers kept.
        #expect(fadt.le32(at: 112) & 1 << 20 == 0)
        #expect(fadt.le32(at: 112) & 1 == 1)  // WBINVD, which a full-ACPI platform must set
        #expect(fadt.le16(at: 46) == 9)  // SCI_INT
        #expect(fadt.le64(at: 248) == 0x600 && fadt.le64(at: 260) == 0x601)
        #expect(fadt.le32(at: 48) == 0)  // SMI_CMD: always in ACPI mode
        #expect(fadt.le32(at: 76) == 0 && fadt[91] == 0)  // no PM timer
        #expect(fadt.le32(at: 80) == 0 && fadt[92] == 0)  // no GPE0 block
        #expect(fadt.byteSum == 0)
    }

    @Test func withoutS3TheFADTIsHardwareReducedWithoutAnSCI() throws {
        let fadt = try table("FACP", in: tables()).bytes
        #expect(fadt.le32(at: 112) & 1 << 20 != 0)
        #expect(fadt.le16(at: 46) == 0)
    }

    @Test func theSCIOverrideIsLevelTriggeredActiveHighInTheMADT() throws {
        var configuration = ACPIConfiguration(vCPUCount: 1)
        configuration.suspendToRAM = SuspendToRAM(sciInterrupt: 11)
        configuration.interruptSourceOverrides = [.sci(11)]
        let built = try ACPITableBuilder.build(configuration, at: base)
        // ISA IRQ 11 -> GSI 11, active high (01), level (11 << 2).
        #expect(try table("APIC", in: built).bytes.firstRange(of: [2, 10, 0, 11, 11, 0, 0, 0, 0x0d, 0x00]) != nil)
        #expect(try table("FACP", in: built).bytes.le16(at: 46) == 11)
        configuration.suspendToRAM = SuspendToRAM(sciInterrupt: 16)
        #expect(throws: ACPIError.invalidSCIInterrupt(16)) { try ACPITableBuilder.build(configuration, at: base) }
        #expect(ACPIError.invalidSCIInterrupt(16).description == "SCI interrupt 16 is not an ISA IRQ (0-15)")
    }

    @Test func theDSDTDeclaresS3BeforeS5() throws {
        let dsdt = try table("DSDT", in: suspendTables()).bytes
        // Name (_S3_, Package (0x04) { 1, 1, 0, 0 }), then _S5_ as before.
        #expect(dsdt.slice(36, 12) == [0x08, 0x5f, 0x53, 0x33, 0x5f, 0x12, 0x06, 0x04, 0x01, 0x01, 0x00, 0x00])
        #expect(dsdt.slice(48, 14) == [0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00])
        #expect(dsdt.byteSum == 0)
    }

    @Test func anS3SleepTypeWiderThanSLPTYPIsRefused() {
        var configuration = ACPIConfiguration(vCPUCount: 1)
        configuration.suspendToRAM = SuspendToRAM(sleepType: 8)
        #expect(throws: ACPIError.invalidSleepType(8)) { try ACPITableBuilder.build(configuration, at: base) }
    }
}
