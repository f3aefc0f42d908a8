import ACPI
import Testing
import VMCore

@Suite struct ACPILayoutTests {
    @Test func tablesSitAtFixedOffsetsFromTheBaseWithTheMADTLast() throws {
        let built = try tables()
        #expect(built.base == base)
        #expect(built.rsdpAddress == base)
        #expect(built.tables.map(\.signature) == ["RSD PTR ", "XSDT", "RSDT", "FACP", "DSDT", "APIC"])
        #expect(built.tables.map { $0.address.rawValue - base.rawValue } == [0x000, 0x030, 0x070, 0x0a0, 0x1c0, 0x200])
        #expect(built.tables.map(\.bytes.count) == [36, 52, 44, 276, 50, 88])
        #expect(built.size == 0x200 + 88)
    }

    @Test func tablesAreAlignedDisjointAndInsideTheReportedRange() throws {
        let built = try tables(vCPUs: 8, at: GuestAddress(0x7_fff0))
        let end = built.base.rawValue + built.size
        for table in built.tables {
            #expect(table.address.rawValue % 16 == 0)
            #expect(table.range.lowerBound >= built.base.rawValue && table.range.upperBound <= end)
        }
        for (previous, next) in zip(built.tables, built.tables.dropFirst()) {
            #expect(previous.range.upperBound <= next.range.lowerBound)
        }
        #expect(built.tables.last?.range.upperBound == end)
    }

    @Test func imageHoldsEveryTableAtItsOffsetAndZerosBetween() throws {
        let built = try tables()
        let image = built.image
        #expect(image.count == Int(built.size))
        var covered = 0
        for table in built.tables {
            let offset = Int(table.address.rawValue - base.rawValue)
            #expect(image.slice(offset, table.bytes.count) == table.bytes)
            covered += table.bytes.count
        }
        // The padding is zero, so the image sums to the tables' own sums: zero.
        #expect(image.byteSum == 0)
        #expect(covered < image.count)
    }

    @Test func buildingIsAPureFunctionOfItsInputs() throws {
        #expect(try tables() == tables())
        // Moving the base moves the pointers but not the tables that hold none.
        let low = try tables(at: GuestAddress(0xe_0000))
        let high = try tables(at: GuestAddress(0x8000_0000))
        #expect(try table("DSDT", in: low).bytes == table("DSDT", in: high).bytes)
        #expect(try table("APIC", in: low).bytes == table("APIC", in: high).bytes)
        #expect(try table("XSDT", in: high).bytes.le64(at: 36) == 0x8000_00a0)
        #expect(try table("FACP", in: high).bytes.le64(at: 140) == 0x8000_01c0)
    }
}

@Suite struct ACPIHeaderTests {
    static let revisions: [(String, UInt8)] = [("XSDT", 1), ("RSDT", 1), ("FACP", 6), ("DSDT", 2), ("APIC", 6)]

    @Test(arguments: revisions)
    func headerHasSignatureLengthRevisionChecksumAndIDs(signature: String, revision: UInt8) throws {
        let bytes = try table(signature, in: tables()).bytes
        #expect(bytes.ascii(0, 4) == signature)
        #expect(bytes.le32(at: 4) == UInt32(bytes.count))
        #expect(bytes[8] == revision)
        #expect(bytes.byteSum == 0)
        #expect(bytes.ascii(10, 6) == "SWVMM ")
        #expect(bytes.ascii(16, 8) == "SWIFTVMM")
        #expect(bytes.le32(at: 24) == 1)  // OEM revision
        #expect(bytes.ascii(28, 4) == "SWVM")  // creator id
        #expect(bytes.le32(at: 32) == 1)  // creator revision
    }

    @Test func checksumsHoldForEveryProcessorCount() throws {
        for count in [1, 3, 64, 255] {
            for table in try tables(vCPUs: count).tables {
                #expect(table.bytes.byteSum == 0, "\(table.signature) with \(count) vCPUs")
            }
        }
    }

    @Test func otherIdentifiersAppearInEveryHeader() throws {
        var configuration = ACPIConfiguration(vCPUCount: 1)
        configuration.oemID = "ABCDEF"
        configuration.oemTableID = "TABLE_ID"
        let built = try ACPITableBuilder.build(configuration, at: base)
        #expect(built.tables[0].bytes.ascii(9, 6) == "ABCDEF")
        for table in built.tables.dropFirst() {
            #expect(table.bytes.ascii(10, 6) == "ABCDEF")
            #expect(table.bytes.ascii(16, 8) == "TABLE_ID")
            #expect(table.bytes.byteSum == 0)
        }
    }
}

@Suite struct RSDPTests {
    @Test func rsdpBytesExactly() throws {
        let rsdp = try table("RSD PTR ", in: tables())
        #expect(rsdp.address == base)
        #expect(
            rsdp.bytes == [
                0x52, 0x53, 0x44, 0x20, 0x50, 0x54, 0x52, 0x20,  // "RSD PTR "
                0xa7,  // checksum of bytes 0-19
                0x53, 0x57, 0x56, 0x4d, 0x4d, 0x20,  // "SWVMM "
                0x02,  // revision
                0x70, 0x00, 0x0e, 0x00,  // RSDT at 0xe0070
                0x24, 0x00, 0x00, 0x00,  // length 36
                0x30, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x00,  // XSDT at 0xe0030
                0x9e,  // extended checksum
                0x00, 0x00, 0x00,
            ])
    }

    @Test func bothChecksumsAreZero() throws {
        let bytes = try table("RSD PTR ", in: tables(vCPUs: 5, at: GuestAddress(0x1234_5670))).bytes
        #expect(bytes.slice(0, 20).byteSum == 0)
        #expect(bytes.byteSum == 0)
        #expect(bytes.le32(at: 16) == 0x1234_56e0)
        #expect(bytes.le64(at: 24) == 0x1234_56a0)
    }
}

@Suite struct RootTableTests {
    @Test func xsdtListsTheFADTAndMADT() throws {
        let built = try tables()
        let xsdt = try table("XSDT", in: built).bytes
        let fadt = try table("FACP", in: built).address.rawValue
        let madt = try table("APIC", in: built).address.rawValue
        #expect(xsdt.count == 36 + 2 * 8)
        #expect([xsdt.le64(at: 36), xsdt.le64(at: 44)] == [fadt, madt])
        #expect([fadt, madt] == [0xe_00a0, 0xe_0200])
        #expect(try table("RSD PTR ", in: built).bytes.le64(at: 24) == table("XSDT", in: built).address.rawValue)
    }

    @Test func rsdtListsTheSameTablesIn32Bits() throws {
        let built = try tables()
        let rsdt = try table("RSDT", in: built).bytes
        #expect(rsdt.count == 36 + 2 * 4)
        #expect([rsdt.le32(at: 36), rsdt.le32(at: 40)] == [0xe_00a0, 0xe_0200])
        #expect(try table("RSD PTR ", in: built).bytes.le32(at: 16) == UInt32(table("RSDT", in: built).address.rawValue))
    }
}

@Suite struct FADTTests {
    @Test func fadtIsRevision6Point5AndHardwareReduced() throws {
        let fadt = try table("FACP", in: tables()).bytes
        #expect(fadt.count == 276)
        #expect(fadt[8] == 6 && fadt[131] == 5)  // revision 6, minor version 5
        // HW_REDUCED_ACPI (20), RESET_REG_SUP (10), SLP_BUTTON (5), PWR_BUTTON (4).
        #expect(fadt.slice(112, 4) == [0x30, 0x04, 0x10, 0x00])
        #expect(fadt.le32(at: 112) == 1 << 20 | 1 << 10 | 1 << 5 | 1 << 4)
        // IAPC_BOOT_ARCH: VGA not present (2), CMOS RTC not present (5); no 8042.
        #expect(fadt.le16(at: 109) == 0x0024)
    }

    @Test func fadtPointsAtTheDSDT() throws {
        let built = try tables()
        let fadt = try table("FACP", in: built).bytes
        let dsdt = try table("DSDT", in: built).address.rawValue
        #expect(dsdt == 0xe_01c0)
        #expect(fadt.slice(140, 8) == [0xc0, 0x01, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x00])  // X_DSDT
        #expect(fadt.le32(at: 40) == 0xe_01c0)  // DSDT
        #expect(fadt.le32(at: 36) == 0 && fadt.le64(at: 132) == 0)  // no FACS
    }

    @Test func resetAndSleepRegistersAreByteWideIOPorts() throws {
        let fadt = try table("FACP", in: tables()).bytes
        // System I/O, 8 bits wide, at bit 0, byte access, port.
        #expect(fadt.slice(116, 12) == [0x01, 0x08, 0x00, 0x01, 0x02, 0x06, 0, 0, 0, 0, 0, 0])  // RESET_REG 0x602
        #expect(fadt[128] == 0x01)  // RESET_VALUE
        #expect(fadt.slice(244, 12) == [0x01, 0x08, 0x00, 0x01, 0x00, 0x06, 0, 0, 0, 0, 0, 0])  // SLEEP_CONTROL_REG 0x600
        #expect(fadt.slice(256, 12) == [0x01, 0x08, 0x00, 0x01, 0x01, 0x06, 0, 0, 0, 0, 0, 0])  // SLEEP_STATUS_REG 0x601
    }

    @Test func fixedHardwareBlocksAreAbsent() throws {
        let fadt = try table("FACP", in: tables()).bytes
        // SCI_INT through CENTURY, and X_PM1a_EVT_BLK through X_GPE1_BLK.
        #expect(fadt.slice(44, 109 - 44).allSatisfy { $0 == 0 })
        #expect(fadt.slice(148, 244 - 148).allSatisfy { $0 == 0 })
        #expect(fadt.slice(129, 2) == [0, 0])  // ARM_BOOT_ARCH
    }

    @Test func hypervisorVendorIdentity() throws {
        let fadt = try table("FACP", in: tables()).bytes
        #expect(fadt.ascii(268, 8) == "SWIFTVMM")
    }

    @Test func configuredPortsAndValuesAreUsed() throws {
        var configuration = ACPIConfiguration(vCPUCount: 1)
        configuration.sleepControlPort = 0x1234
        configuration.sleepStatusPort = 0x1235
        configuration.resetPort = 0xcf9
        configuration.resetValue = 0x06
        configuration.bootArchitecture = [.i8042, .msiNotSupported]
        let fadt = try table("FACP", in: ACPITableBuilder.build(configuration, at: base)).bytes
        #expect(fadt.le64(at: 120) == 0xcf9 && fadt[128] == 0x06)
        #expect(fadt.le64(at: 248) == 0x1234)
        #expect(fadt.le64(at: 260) == 0x1235)
        #expect(fadt.le16(at: 109) == 0b1010)
        #expect(fadt.byteSum == 0)
    }
}

@Suite struct DSDTTests {
    @Test func dsdtDeclaresS5() throws {
        let dsdt = try table("DSDT", in: tables()).bytes
        #expect(dsdt.count == 36 + 14)
        // Name (_S5_, Package (0x04) { 5, 5, 0, 0 })
        #expect(dsdt.slice(36, 14) == [0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00])
    }

    @Test func s5SleepTypeIsConfigurable() throws {
        var configuration = ACPIConfiguration(vCPUCount: 1)
        configuration.s5SleepType = 0
        let dsdt = try table("DSDT", in: ACPITableBuilder.build(configuration, at: base)).bytes
        #expect(dsdt.slice(36, 12) == [0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00])
        #expect(dsdt.byteSum == 0)
    }

    @Test func sleepControlValueIsTypeAndEnable() {
        #expect(SleepRegisters.controlValue(sleepType: 5) == 0x34)
        #expect(SleepRegisters.controlValue(sleepType: 0) == 0x20)
        #expect(SleepRegisters.controlValue(sleepType: 7) == 0x3c)
        #expect(SleepRegisters.wakeStatus == 0x80)
    }
}

@Suite struct MADTTests {
    @Test func madtBytesForTwoVCPUs() throws {
        let madt = try table("APIC", in: tables(vCPUs: 2)).bytes
        #expect(madt.count == 88)
        #expect(
            madt.slice(36, 88 - 36) == [
                0x00, 0x00, 0xe0, 0xfe,  // local APIC address 0xfee00000
                0x00, 0x00, 0x00, 0x00,  // flags: not PCAT_COMPAT
                0x00, 0x08, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,  // Processor Local APIC: UID 0, APIC id 0, enabled
                0x00, 0x08, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00,  // Processor Local APIC: UID 1, APIC id 1, enabled
                0x01, 0x0c, 0x00, 0x00, 0x00, 0x00, 0xc0, 0xfe, 0x00, 0x00, 0x00, 0x00,  // I/O APIC 0 at 0xfec00000, GSI 0
                0x02, 0x0a, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,  // ISA IRQ 0 -> GSI 2, conforming
                0x04, 0x06, 0xff, 0x00, 0x00, 0x01,  // NMI on LINT1 of all processors
            ])
    }

    @Test func processorEntriesFollowTheAPICIDs() throws {
        var configuration = ACPIConfiguration(apicIDs: [0, 2, 4])
        configuration.pcatCompatible = true
        configuration.ioAPIC = IOAPIC(id: 3, address: 0xfec0_1000, gsiBase: 24)
        configuration.interruptSourceOverrides = [
            .pitTimer, InterruptSourceOverride(source: 9, gsi: 9, flags: .init(polarity: .activeHigh, triggerMode: .level)),
        ]
        configuration.localAPICNMIs = [LocalAPICNMI(processorUID: 1, flags: .init(polarity: .activeLow, triggerMode: .edge), lint: 0)]
        let madt = try table("APIC", in: ACPITableBuilder.build(configuration, at: base)).bytes
        #expect(madt.count == 44 + 3 * 8 + 12 + 2 * 10 + 6)
        #expect(madt.le32(at: 40) == 1)
        #expect(madt.slice(44, 24) == [0, 8, 0, 0, 1, 0, 0, 0, 0, 8, 1, 2, 1, 0, 0, 0, 0, 8, 2, 4, 1, 0, 0, 0])
        #expect(madt.slice(68, 12) == [1, 12, 3, 0, 0x00, 0x10, 0xc0, 0xfe, 24, 0, 0, 0])
        #expect(madt.slice(80, 10) == [2, 10, 0, 0, 2, 0, 0, 0, 0, 0])
        #expect(madt.slice(90, 10) == [2, 10, 0, 9, 9, 0, 0, 0, 0x0d, 0x00])  // active high, level
        #expect(madt.slice(100, 6) == [4, 6, 1, 0x07, 0x00, 0])  // active low, edge, LINT0
        #expect(madt.byteSum == 0)
    }

    @Test func manyProcessorsFit() throws {
        let madt = try table("APIC", in: tables(vCPUs: 255)).bytes
        #expect(madt.count == 44 + 255 * 8 + 28)
        let last = 44 + 254 * 8
        #expect(madt.slice(last, 8) == [0, 8, 254, 254, 1, 0, 0, 0])
        #expect(madt.byteSum == 0)
    }
}

@Suite struct ACPIErrorTests {
    private func build(_ change: (inout ACPIConfiguration) -> Void, at address: GuestAddress = base) throws(ACPIError) {
        var configuration = ACPIConfiguration(vCPUCount: 2)
        change(&configuration)
        _ = try ACPITableBuilder.build(configuration, at: address)
    }

    @Test func processorCountsOutOfRange() {
        #expect(throws: ACPIError.noProcessors) { try build { $0 = ACPIConfiguration(vCPUCount: 0) } }
        #expect(throws: ACPIError.tooManyProcessors(count: 256)) { try build { $0 = ACPIConfiguration(vCPUCount: 256) } }
        #expect(throws: ACPIError.tooManyProcessors(count: 300)) { try build { $0 = ACPIConfiguration(vCPUCount: 300) } }
    }

    @Test func badAPICIDs() {
        #expect(throws: ACPIError.invalidAPICID(0xff)) { try build { $0.apicIDs = [0, 0xff] } }
        #expect(throws: ACPIError.duplicateAPICID(1)) { try build { $0.apicIDs = [1, 2, 1] } }
    }

    @Test func misalignedOrHighBases() {
        #expect(throws: ACPIError.misalignedBase(GuestAddress(0xe_0008))) { try build({ _ in }, at: GuestAddress(0xe_0008)) }
        #expect(throws: ACPIError.tablesAbove4GiB(base: GuestAddress(0xffff_ff00), size: 0x258)) {
            try build({ _ in }, at: GuestAddress(0xffff_ff00))
        }
        #expect(throws: ACPIError.tablesAbove4GiB(base: GuestAddress(0xffff_ffff_ffff_fff0), size: 0x258)) {
            try build({ _ in }, at: GuestAddress(0xffff_ffff_ffff_fff0))
        }
        // Ending exactly at 4 GiB is fine.
        #expect(throws: Never.self) { try build({ _ in }, at: GuestAddress(0x1_0000_0000 - 0x260)) }
    }

    @Test func badIdentifiersAndSleepType() {
        #expect(throws: ACPIError.invalidIdentifier(field: "OEM id", value: "SWVMM", length: 6)) {
            try build { $0.oemID = "SWVMM" }
        }
        #expect(throws: ACPIError.invalidIdentifier(field: "OEM table id", value: "SWIFTVM\u{e9}", length: 8)) {
            try build { $0.oemTableID = "SWIFTVM\u{e9}" }
        }
        #expect(throws: ACPIError.invalidIdentifier(field: "hypervisor vendor id", value: "", length: 8)) {
            try build { $0.hypervisorVendorID = "" }
        }
        #expect(throws: ACPIError.invalidSleepType(8)) { try build { $0.s5SleepType = 8 } }
    }

    @Test func descriptionsNameTheProblem() {
        #expect(ACPIError.tooManyProcessors(count: 300).description == "300 processors do not fit in the MADT; at most 255 are supported")
        #expect(ACPIError.misalignedBase(GuestAddress(0xe_0008)).description.contains("0xe0008"))
    }
}
