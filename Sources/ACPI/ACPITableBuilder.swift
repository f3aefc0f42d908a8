import VMCore

/// One ACPI table, or the RSDP, and where it belongs in guest memory.
public struct ACPITable: Hashable, Sendable, Codable {
    /// The table's signature as it appears in its first bytes: `"FACP"`, `"APIC"`,
    /// ..., or `"RSD PTR "` for the RSDP.
    public var signature: String
    public var address: GuestAddress
    /// The complete table, checksum included.
    public var bytes: [UInt8]

    /// The guest-physical range the table occupies.
    public var range: Range<UInt64> { address.rawValue..<address.rawValue + UInt64(bytes.count) }
}

/// The ACPI tables of one machine, laid out from a base address.
///
/// Write every table's bytes at its address (or `image` at `base`), mark
/// `base..<base + size` reserved in the E820 map, and point the zero page's
/// `acpi_rsdp_addr` at `rsdpAddress`.
public struct ACPITables: Hashable, Sendable, Codable {
    /// Where the first table (the RSDP) starts.
    public var base: GuestAddress
    /// The RSDP, which the guest finds through `acpi_rsdp_addr` or by scanning
    /// 0xe0000-0xfffff on 16-byte boundaries.
    public var rsdpAddress: GuestAddress
    /// The RSDP, XSDT, RSDT, FADT, DSDT and MADT (and the FACS, with S3), in ascending address order.
    public var tables: [ACPITable]
    /// From `base` to the end of the last table.
    public var size: UInt64

    /// The table with this signature, if there is one.
    public subscript(signature signature: String) -> ACPITable? {
        tables.first { $0.signature == signature }
    }

    /// All tables as one block to be written at `base`, zero-filled between tables.
    public var image: [UInt8] {
        var image = [UInt8](repeating: 0, count: Int(size))
        for table in tables {
            let offset = Int(table.address.rawValue - base.rawValue)
            image.replaceSubrange(offset..<offset + table.bytes.count, with: table.bytes)
        }
        return image
    }
}

/// Builds the ACPI tables with which a Linux kernel booted without firmware
/// finds its processors and interrupt controllers, and can power off and
/// reset the machine.
///
/// Without S3 the platform is hardware-reduced ACPI (ACPI 6.5, 4.1): there
/// are no PM1 event or control blocks, no PM timer, no GPEs and no SCI.
/// Power-off and reset go through the FADT's sleep control and reset
/// registers, 8-bit I/O ports the machine must implement (see
/// `ACPIConfiguration`). With S3 it has the PM1a blocks, the SCI and a FACS
/// as well (see `SuspendToRAM`).
///
/// Layout from the base address, each table 16-byte aligned and the MADT,
/// whose size grows with the processor count, last:
///
/// | offset | table | size |
/// | --- | --- | --- |
/// | 0x000 | RSDP (revision 2) | 36 |
/// | 0x030 | XSDT: FADT, MADT | 52 |
/// | 0x070 | RSDT: FADT, MADT | 44 |
/// | 0x0a0 | FADT (revision 6.5) | 276 |
/// | 0x1c0 | DSDT: `\_S5_` | 50 |
/// | 0x200 | MADT | 56 + 8 per processor + 10 per override + 6 per NMI entry |
///
/// With `suspendToRAM` the DSDT also holds `\_S3_` (so the MADT starts
/// later), and a FACS (64 bytes, 64-byte aligned, not listed in the RSDT or
/// XSDT but pointed at by the FADT's FIRMWARE_CTRL) follows the MADT.
public enum ACPITableBuilder {
    /// The alignment of the base and of every table: the RSDP's requirement.
    public static let alignment: UInt64 = 16

    /// The tables for `configuration`, laid out from `base`.
    ///
    /// A pure function of its arguments. `base` must be 16-byte aligned, and
    /// the tables must end at or below 4 GiB because the RSDT holds 32-bit
    /// addresses; 0xe0000 suits both and is where a BIOS would put them.
    public static func build(_ configuration: ACPIConfiguration, at base: GuestAddress) throws(ACPIError) -> ACPITables {
        let header = try HeaderFields(configuration)
        try validate(configuration)
        guard base.rawValue % alignment == 0 else { throw .misalignedBase(base) }

        let dsdt = differentiatedSystemDescriptionTable(configuration, header)
        let madt = multipleAPICDescriptionTable(configuration, header)
        let listedCount = 2  // FADT and MADT
        var sizes = [rsdpLength, headerLength + 8 * listedCount, headerLength + 4 * listedCount, fadtLength, dsdt.count, madt.count]
        if configuration.suspendToRAM != nil { sizes.append(facsLength) }

        var offsets: [UInt64] = []
        var end: UInt64 = 0
        for (index, size) in sizes.enumerated() {
            // The FACS (the seventh, when present) must be 64-byte aligned.
            let align = index == 6 ? facsAlignment : alignment
            let offset = (end + align - 1) / align * align
            offsets.append(offset)
            end = offset + UInt64(size)
        }
        let (last, overflow) = base.rawValue.addingReportingOverflow(end)
        guard !overflow, last <= 1 << 32 else { throw .tablesAbove4GiB(base: base, size: end) }

        let addresses = offsets.map { base.rawValue + $0 }
        let (rsdp, xsdt, rsdt, fadt) = (addresses[0], addresses[1], addresses[2], addresses[3])
        let (dsdtAddress, madtAddress) = (addresses[4], addresses[5])
        let listed = [fadt, madtAddress]
        let facsAddress = addresses.count > 6 ? addresses[6] : nil
        var contents: [(String, [UInt8])] = [
            ("RSD PTR ", rootSystemDescriptionPointer(header, rsdt: rsdt, xsdt: xsdt)),
            ("XSDT", extendedSystemDescriptionTable(header, listing: listed)),
            ("RSDT", rootSystemDescriptionTable(header, listing: listed)),
            ("FACP", fixedACPIDescriptionTable(configuration, header, dsdt: dsdtAddress, facs: facsAddress)),
            ("DSDT", dsdt),
            ("APIC", madt),
        ]
        if facsAddress != nil { contents.append(("FACS", firmwareACPIControlStructure())) }
        let tables = zip(contents, addresses).map { content, address in
            ACPITable(signature: content.0, address: GuestAddress(address), bytes: content.1)
        }
        return ACPITables(base: base, rsdpAddress: GuestAddress(rsdp), tables: tables, size: end)
    }

    // MARK: - Validation

    private static func validate(_ configuration: ACPIConfiguration) throws(ACPIError) {
        let ids = configuration.apicIDs
        guard !ids.isEmpty else { throw .noProcessors }
        guard ids.count <= 0xff else { throw .tooManyProcessors(count: ids.count) }
        var seen = Set<UInt8>()
        for id in ids {
            guard id != 0xff else { throw .invalidAPICID(id) }
            guard seen.insert(id).inserted else { throw .duplicateAPICID(id) }
        }
        guard configuration.s5SleepType <= 0b111 else { throw .invalidSleepType(configuration.s5SleepType) }
        if let s3 = configuration.suspendToRAM {
            guard s3.sleepType <= 0b111 else { throw .invalidSleepType(s3.sleepType) }
            guard s3.sciInterrupt <= 15 else { throw .invalidSCIInterrupt(s3.sciInterrupt) }
        }
        try validate(configuration.isaDevices, besideMMIODevices: configuration.mmioDevices.count)
    }

    private static func validate(_ devices: [ACPIISADevice], besideMMIODevices mmioCount: Int) throws(ACPIError) {
        var names = Set((0..<mmioCount).map { "VR" + String(format2: $0) })
        var identities = Set<String>()
        for device in devices {
            func fail(_ problem: String) -> ACPIError { .invalidISADevice(name: device.name, problem: problem) }
            guard AML.isNameSeg(device.name) else {
                throw fail("the name must be four characters, A-Z or _ and then A-Z, 0-9 or _")
            }
            guard device.name.first != "_" else { throw fail("names starting with _ are ACPI's own") }
            guard names.insert(device.name).inserted else { throw fail("the name is used by another device") }
            guard device.hasValidHardwareID else {
                throw fail("hardware ID \"\(device.hardwareID)\" is not a PNP ID (three capital letters, four hex digits)")
            }
            guard identities.insert("\(device.hardwareID) \(device.uniqueID)").inserted else {
                throw fail("another \(device.hardwareID) has _UID \(device.uniqueID)")
            }
            if let irq = device.irqs.first(where: { $0 > 15 }) { throw fail("IRQ \(irq) is not an ISA IRQ (0-15)") }
            if device.ports.contains(where: { $0.length == 0 }) { throw fail("a port range has length 0") }
            if let range = device.ports.first(where: { Int($0.base) + Int($0.length) > 0x1_0000 }) {
                throw fail("ports 0x\(String(range.base, radix: 16)) + \(range.length) run past 0xffff")
            }
        }
    }

    // MARK: - Tables

    static let headerLength = 36
    static let rsdpLength = 36
    /// The length of a revision 6 FADT, unchanged from ACPI 6.0 to 6.5.
    static let fadtLength = 276
    /// The FACS (ACPI 6.5, 5.2.10) is 64 bytes, on a 64-byte boundary.
    static let facsLength = 64
    static let facsAlignment: UInt64 = 64
    /// Where the FACS keeps the real-mode waking vector, which the OS writes
    /// before entering S3 and the platform jumps to on waking.
    public static let facsWakingVectorOffset = 12
    /// Where the FACS keeps X_FIRMWARE_WAKING_VECTOR (64 bits).
    public static let facsExtendedWakingVectorOffset = 24

    /// The RSDP (ACPI 6.5, 5.2.5.3): revision 2, pointing at both the RSDT and the XSDT.
    private static func rootSystemDescriptionPointer(_ header: HeaderFields, rsdt: UInt64, xsdt: UInt64) -> [UInt8] {
        var rsdp = ByteWriter()
        rsdp.append(Array("RSD PTR ".utf8))
        rsdp.append(UInt8(0))  // checksum of the first 20 bytes
        rsdp.append(header.oemID)
        rsdp.append(UInt8(2))  // revision: ACPI 2.0 and later
        rsdp.append(UInt32(rsdt))
        rsdp.append(UInt32(rsdpLength))
        rsdp.append(xsdt)
        rsdp.append(UInt8(0))  // extended checksum, of all 36 bytes
        rsdp.append([0, 0, 0])  // reserved
        rsdp.bytes[8] = checksum(rsdp.bytes[0..<20])
        rsdp.bytes[32] = checksum(rsdp.bytes)
        return rsdp.bytes
    }

    /// The XSDT (ACPI 6.5, 5.2.8): the 64-bit addresses of the other tables.
    private static func extendedSystemDescriptionTable(_ header: HeaderFields, listing addresses: [UInt64]) -> [UInt8] {
        systemDescriptionTable("XSDT", revision: 1, header) { xsdt in
            for address in addresses { xsdt.append(address) }
        }
    }

    /// The RSDT (ACPI 6.5, 5.2.7): the same list in 32 bits, for OSes that
    /// read only ACPI 1.0 structures.
    private static func rootSystemDescriptionTable(_ header: HeaderFields, listing addresses: [UInt64]) -> [UInt8] {
        systemDescriptionTable("RSDT", revision: 1, header) { rsdt in
            for address in addresses { rsdt.append(UInt32(address)) }
        }
    }

    /// The FADT (ACPI 6.5, 5.2.9), revision 6.5: the flags, the reset and
    /// sleep registers, the DSDT and the vendor identity; with S3 also the
    /// FACS, the PM1a blocks and the SCI, every other fixed-hardware block zero.
    private static func fixedACPIDescriptionTable(
        _ configuration: ACPIConfiguration, _ header: HeaderFields, dsdt: UInt64, facs: UInt64?
    ) -> [UInt8] {
        systemDescriptionTable("FACP", revision: 6, header) { fadt in
            fadt.append([UInt8](repeating: 0, count: fadtLength - headerLength))
            if let facs, let s3 = configuration.suspendToRAM {
                // Only the 32-bit fields: ACPICA derives the X_ forms, and a
                // 32-bit FIRMWARE_CTRL is what every reader understands.
                fadt.write(UInt32(facs), at: 36)  // FIRMWARE_CTRL
                fadt.write(UInt32(s3.pm1EventPort), at: 56)  // PM1a_EVT_BLK
                fadt.write(UInt32(s3.pm1ControlPort), at: 64)  // PM1a_CNT_BLK
                fadt.write(UInt8(4), at: 88)  // PM1_EVT_LEN
                fadt.write(UInt8(2), at: 89)  // PM1_CNT_LEN
            }
            // The 32-bit DSDT field too, for OSes that read only it; ACPICA
            // takes X_DSDT when both are set and equal.
            fadt.write(UInt32(dsdt), at: 40)
            if let s3 = configuration.suspendToRAM { fadt.write(s3.sciInterrupt, at: 46) }  // SCI_INT
            fadt.write(configuration.bootArchitecture.rawValue, at: 109)
            fadt.write(configuration.suspendToRAM == nil ? fadtFlags : fadtFlags & ~hardwareReducedFlag | wbinvdFlag, at: 112)
            fadt.write(genericAddress(ioPort: configuration.resetPort), at: 116)
            fadt.write(configuration.resetValue, at: 128)
            fadt.write(UInt8(5), at: 131)  // FADT minor version: ACPI 6.5
            fadt.write(dsdt, at: 140)  // X_DSDT
            fadt.write(genericAddress(ioPort: configuration.sleepControlPort), at: 244)
            fadt.write(genericAddress(ioPort: configuration.sleepStatusPort), at: 256)
            fadt.write(header.hypervisorVendorID, at: 268)
        }
    }

    /// FADT flags (ACPI 6.5, table 5.10): no fixed power or sleep button (bits
    /// 4, 5), RESET_REG is supported (bit 10), and, without S3, the platform
    /// is hardware-reduced (bit 20), so the OS uses the sleep registers and
    /// expects no PM1 blocks, SCI or 8259-driven timer.
    static let fadtFlags: UInt32 = 1 << 4 | 1 << 5 | 1 << 10 | hardwareReducedFlag
    /// HW_REDUCED_ACPI, cleared when S3 is offered (see `SuspendToRAM`).
    static let hardwareReducedFlag: UInt32 = 1 << 20
    /// WBINVD: the instruction flushes caches as the OS expects, which ACPI
    /// requires of every platform that is not hardware-reduced (and a
    /// guest's WBINVD is KVM's to carry out).
    static let wbinvdFlag: UInt32 = 1 << 0

    /// A Generic Address Structure (ACPI 6.5, 5.2.3.2) for an 8-bit register
    /// at an I/O port, accessed a byte at a time.
    private static func genericAddress(ioPort: UInt16) -> [UInt8] {
        var gas = ByteWriter()
        gas.append([0x01, 8, 0, 1])  // system I/O space, 8 bits wide, at bit 0, byte access
        gas.append(UInt64(ioPort))
        return gas.bytes
    }

    /// The DSDT (revision 2: 64-bit AML integers) holds `\_S5_`, which
    /// gives the SLP_TYP values for soft-off: `Package () { typ, typ, 0, 0 }`
    /// (SLP_TYPa, SLP_TYPb, two reserved), and the memory-mapped devices.
    private static func differentiatedSystemDescriptionTable(
        _ configuration: ACPIConfiguration, _ header: HeaderFields
    ) -> [UInt8] {
        let s5 = UInt64(configuration.s5SleepType)
        var aml: [UInt8] = []
        if let s3 = configuration.suspendToRAM {
            let type = UInt64(s3.sleepType)
            aml += AML.name("_S3_", AML.package([AML.integer(type), AML.integer(type), AML.integer(0), AML.integer(0)]))
        }
        aml += AML.name("_S5_", AML.package([AML.integer(s5), AML.integer(s5), AML.integer(0), AML.integer(0)]))
        if !configuration.mmioDevices.isEmpty || !configuration.isaDevices.isEmpty {
            // Named VR00, VR01, ...: two hex digits cover the 255 a machine can have.
            let mmio = configuration.mmioDevices.enumerated().flatMap { index, device in
                device.aml(name: "VR" + String(format2: index))
            }
            aml += AML.scope("\\_SB_", configuration.isaDevices.flatMap(\.aml) + mmio)
        }
        return systemDescriptionTable("DSDT", revision: 2, header) { $0.append(aml) }
    }

    /// The FACS (ACPI 6.5, 5.2.10), version 2: no hardware signature, the
    /// waking vectors zero until the OS writes them, no global lock in use,
    /// and no 64-bit wake support (so the OS uses the real-mode vector).
    private static func firmwareACPIControlStructure() -> [UInt8] {
        var facs = ByteWriter()
        facs.append(Array("FACS".utf8))
        facs.append(UInt32(facsLength))
        facs.append([UInt8](repeating: 0, count: facsLength - 8))
        facs.write(UInt8(2), at: 32)  // version
        return facs.bytes
    }

    /// The MADT (ACPI 6.5, 5.2.12), revision 6: a Processor Local APIC entry
    /// per processor, the I/O APIC, the interrupt source overrides and the
    /// local APIC NMI inputs.
    private static func multipleAPICDescriptionTable(_ configuration: ACPIConfiguration, _ header: HeaderFields) -> [UInt8] {
        systemDescriptionTable("APIC", revision: 6, header) { madt in
            madt.append(configuration.localAPICAddress)
            madt.append(UInt32(configuration.pcatCompatible ? 1 : 0))  // PCAT_COMPAT
            for (uid, apicID) in configuration.apicIDs.enumerated() {
                madt.append([0, 8, UInt8(uid), apicID])  // Processor Local APIC
                madt.append(UInt32(1))  // enabled
            }
            let ioAPIC = configuration.ioAPIC
            madt.append([1, 12, ioAPIC.id, 0])  // I/O APIC
            madt.append(ioAPIC.address)
            madt.append(ioAPIC.gsiBase)
            for override in configuration.interruptSourceOverrides {
                madt.append([2, 10, 0, override.source])  // Interrupt Source Override, bus 0 (ISA)
                madt.append(override.gsi)
                madt.append(override.flags.encoded)
            }
            for nmi in configuration.localAPICNMIs {
                madt.append([4, 6, nmi.processorUID])  // Local APIC NMI
                madt.append(nmi.flags.encoded)
                madt.append(nmi.lint)
            }
        }
    }

    /// A table with the common 36-byte header (ACPI 6.5, 5.2.6), whose length
    /// and checksum are filled in after `body` has appended the rest.
    private static func systemDescriptionTable(
        _ signature: String, revision: UInt8, _ header: HeaderFields, body: (inout ByteWriter) -> Void
    ) -> [UInt8] {
        var table = ByteWriter()
        table.append(Array(signature.utf8))
        table.append(UInt32(0))  // length, below
        table.append(revision)
        table.append(UInt8(0))  // checksum, below
        table.append(header.oemID)
        table.append(header.oemTableID)
        table.append(UInt32(1))  // OEM revision
        table.append(Array("SWVM".utf8))  // creator id
        table.append(UInt32(1))  // creator revision
        body(&table)
        table.write(UInt32(table.bytes.count), at: 4)
        table.bytes[9] = checksum(table.bytes)
        return table.bytes
    }

    /// The byte that makes `bytes` sum to zero modulo 256 when it replaces a zero among them.
    static func checksum(_ bytes: some Sequence<UInt8>) -> UInt8 {
        0 &- bytes.reduce(0, &+)
    }
}

/// The identifiers every table header carries, validated once.
private struct HeaderFields {
    var oemID: [UInt8]
    var oemTableID: [UInt8]
    var hypervisorVendorID: [UInt8]

    init(_ configuration: ACPIConfiguration) throws(ACPIError) {
        oemID = try Self.identifier("OEM id", configuration.oemID, length: 6)
        oemTableID = try Self.identifier("OEM table id", configuration.oemTableID, length: 8)
        hypervisorVendorID = try Self.identifier("hypervisor vendor id", configuration.hypervisorVendorID, length: 8)
    }

    private static func identifier(_ field: String, _ value: String, length: Int) throws(ACPIError) -> [UInt8] {
        let bytes = Array(value.utf8)
        guard bytes.count == length, bytes.allSatisfy({ (0x20...0x7e).contains($0) }) else {
            throw .invalidIdentifier(field: field, value: value, length: length)
        }
        return bytes
    }
}

/// Little-endian bytes, appended or written at an offset.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func append(_ more: [UInt8]) {
        bytes += more
    }

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        append(littleEndian(value))
    }

    mutating func write(_ more: [UInt8], at offset: Int) {
        bytes.replaceSubrange(offset..<offset + more.count, with: more)
    }

    mutating func write<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        write(littleEndian(value), at: offset)
    }

    private func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<T.bitWidth / 8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }
}

extension String {
    /// `value` as two uppercase hex digits.
    fileprivate init(format2 value: Int) {
        let digits = String(value & 0xff, radix: 16, uppercase: true)
        self = digits.count == 1 ? "0" + digits : digits
    }
}
