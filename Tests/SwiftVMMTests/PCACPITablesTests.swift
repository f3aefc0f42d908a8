import ACPI
import Testing
import VMCore

@testable import SwiftVMM

/// The ACPI tables of swiftvmm's PC machine, as a guest reads them: full
/// ACPI for S3 (the SCI, the 8259s declared), and the fixed-port devices in
/// the DSDT, which Linux needs to map their IRQs.
@Suite struct PCACPITablesTests {
    let tables: ACPITables

    init() throws {
        tables = try ACPITableBuilder.build(PlatformSetup.acpiConfiguration(vcpuCount: 2), at: PlatformSetup.acpiBase)
    }

    private func bytes(_ signature: String) throws -> [UInt8] { try #require(tables[signature: signature]).bytes }

    @Test func theFADTIsFullACPIWithTheSCIOnIRQ9() throws {
        let fadt = try bytes("FACP")
        let flags = UInt32(fadt[112]) | UInt32(fadt[113]) << 8 | UInt32(fadt[114]) << 16 | UInt32(fadt[115]) << 24
        #expect(flags & 1 << 20 == 0, "not hardware-reduced, or Linux ignores the FACS")
        #expect(UInt16(fadt[46]) | UInt16(fadt[47]) << 8 == 9)
        #expect(tables[signature: "FACS"] != nil)
    }

    @Test func theMADTDeclaresThe8259sAndTheSCIOverride() throws {
        let madt = try bytes("APIC")
        #expect(madt[40] & 1 == 1, "PCAT_COMPAT: KVM's 8259s are there")
        #expect(madt.firstRange(of: [2, 10, 0, 9, 9, 0, 0, 0, 0x0d, 0x00]) != nil, "ISA IRQ 9 -> GSI 9, active high, level")
        #expect(madt.firstRange(of: [2, 10, 0, 0, 2, 0, 0, 0, 0x00, 0x00]) != nil, "the PIT on GSI 2")
    }

    @Test func theDSDTListsEveryFixedPortDeviceWithItsIRQ() throws {
        let dsdt = try bytes("DSDT")
        for (name, id) in [("COM1", "PNP0501"), ("COM2", "PNP0501"), ("KBD_", "PNP0303"), ("MOU_", "PNP0F13"), ("RTC_", "PNP0B00")] {
            #expect(dsdt.firstRange(of: Array(name.utf8)) != nil && dsdt.firstRange(of: Array(id.utf8)) != nil, "\(name)")
        }
        // COM1: ports 0x3f8-0x3ff and IRQ 4; COM2: 0x2f8 and IRQ 3; the keyboard IRQ 1, the mouse IRQ 12.
        #expect(dsdt.firstRange(of: [0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00]) != nil)
        #expect(dsdt.firstRange(of: [0x47, 0x01, 0xf8, 0x02, 0xf8, 0x02, 0x01, 0x08, 0x22, 0x08, 0x00]) != nil)
        #expect(dsdt.firstRange(of: [0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x01, 0x01, 0x22, 0x02, 0x00]) != nil)
        #expect(dsdt.firstRange(of: [0x22, 0x00, 0x10, 0x79, 0x00]) != nil)
    }
}
