import VMCore

/// What an Intel MultiProcessor table describes (MultiProcessor
/// Specification 1.4): the processors, the ISA bus, the one I/O APIC, how the
/// ISA IRQs reach it, and how the local APICs' LINT inputs are wired.
///
/// The defaults describe a KVM machine with the in-kernel irqchip, the same
/// machine the ACPI MADT describes: local APICs at 0xfee00000 (version 0x14,
/// as KVM's LAPIC reports), the I/O APIC id 0 (the id KVM's IOAPIC reports in
/// its ID register; xAPIC systems do not need it apart from the local APIC
/// ids) with version 0x11 at 0xfec00000, ISA IRQ 0 on pin 2 (the MADT's
/// interrupt source override) and every other ISA IRQ except the cascade (2)
/// on the pin of its number, LINT0 ExtINT (the 8259 in virtual-wire mode) and
/// LINT1 NMI on every processor.
public struct MPConfiguration: Hashable, Sendable {
    /// The APIC id of each processor; the first is the bootstrap processor.
    public var apicIDs: [UInt8]
    public var localAPICAddress: UInt32 = 0xfee0_0000
    /// The local APIC version register's low byte (0x14: an integrated xAPIC).
    public var localAPICVersion: UInt8 = 0x14
    public var ioAPICID: UInt8 = 0
    /// The I/O APIC version register's low byte (0x11: an 82093AA-style I/O APIC).
    public var ioAPICVersion: UInt8 = 0x11
    public var ioAPICAddress: UInt32 = 0xfec0_0000
    /// ISA IRQs that do not arrive on the I/O APIC pin of the same number.
    public var isaIRQPins: [UInt8: UInt8] = [0: 2]
    /// The processor entries' CPU signature (CPUID leaf 1 EAX: stepping, model,
    /// family) and feature flags (leaf 1 EDX). Operating systems take both from
    /// CPUID itself; these say "family 6, with an FPU and a local APIC".
    public var cpuSignature: UInt32 = 0x600
    public var featureFlags: UInt32 = 1 << 0 | 1 << 9
    /// Eight printable ASCII characters.
    public var oemID = "SWIFTVMM"
    /// Twelve printable ASCII characters.
    public var productID = "SWIFTVMM SMP"

    /// A machine whose processors have APIC ids 0, 1, ..., `processorCount - 1`,
    /// the ids KVM gives vCPUs created with ids 0, 1, ...
    public init(processorCount: Int) {
        apicIDs = (0..<max(0, processorCount)).map { UInt8(truncatingIfNeeded: $0) }
    }

    /// A machine whose processors have the APIC ids `apicIDs`, in that order.
    public init(apicIDs: [UInt8]) {
        self.apicIDs = apicIDs
    }
}

/// An MP table laid out from a base address: the floating pointer structure
/// there, the configuration table right after it.
public struct MPTable: Hashable, Sendable, Codable {
    /// Where the 16-byte floating pointer structure (`_MP_`) is.
    public var base: GuestAddress
    /// Where the configuration table (`PCMP`) is.
    public var configurationTableAddress: GuestAddress
    /// The floating pointer and the configuration table, to be written at `base`.
    public var bytes: [UInt8]
    public var size: UInt64 { UInt64(bytes.count) }
    /// The guest-physical range the table occupies, to be reserved in the memory map.
    public var range: Range<UInt64> { base.rawValue..<base.rawValue + size }
}

/// Why an MP table cannot be built.
public enum MPTableError: Error, Hashable, Sendable, CustomStringConvertible {
    case noProcessors
    /// APIC id 0xff is the broadcast id; ids must be distinct.
    case invalidAPICID(UInt8)
    case duplicateAPICID(UInt8)
    /// The floating pointer must be 16-byte aligned.
    case misalignedBase(GuestAddress)
    /// The spec's search areas all lie below 1 MiB, and the pointer holds 32 bits.
    case outsideSearchArea(base: GuestAddress, size: UInt64)
    case invalidIdentifier(field: String, value: String, length: Int)
    /// An ISA IRQ above 15, or a pin the I/O APIC does not have.
    case invalidIRQPin(irq: UInt8, pin: UInt8)

    public var description: String {
        switch self {
        case .noProcessors: return "MP table: at least one processor is needed"
        case .invalidAPICID(let id): return "MP table: APIC id \(hex(id)) is the broadcast id"
        case .duplicateAPICID(let id): return "MP table: APIC id \(hex(id)) appears twice"
        case .misalignedBase(let base): return "MP table: the floating pointer at \(base) is not 16-byte aligned"
        case .outsideSearchArea(let base, let size):
            return "MP table: \(size) bytes at \(base) do not end below 1 MiB, where operating systems look for it"
        case .invalidIdentifier(let field, let value, let length):
            return "MP table: \(field) '\(value)' must be \(length) printable ASCII characters"
        case .invalidIRQPin(let irq, let pin):
            return "MP table: ISA IRQ \(irq) on I/O APIC pin \(pin): IRQs are 0-15 and pins 0-23"
        }
    }
}

/// Builds the Intel MP table with which an operating system that does not
/// read ACPI (or reads it after this) finds every processor and the I/O APIC.
///
/// ```
/// base + 0x00   floating pointer: "_MP_", pointer, length 1, revision 4, checksum,
///               feature byte 1 = 0 (a configuration table follows),
///               feature byte 2 = 0 (IMCR absent: virtual-wire mode)
/// base + 0x10   configuration table header "PCMP" (44 bytes), then entries in
///               the spec's order: processors (20 bytes each), the ISA bus, the
///               I/O APIC, I/O interrupt assignments, local interrupt assignments
///               (8 bytes each)
/// ```
public enum MPTableBuilder {
    /// MP specification revision 1.4.
    static let specRevision: UInt8 = 4
    static let floatingPointerLength = 16
    static let headerLength = 44
    static let processorEntryLength = 20
    static let entryLength = 8
    /// The ISA bus's id, as the interrupt entries refer to it.
    static let isaBusID: UInt8 = 0

    /// Entry types (MP spec table 4-3).
    enum EntryType: UInt8 {
        case processor = 0, bus, ioAPIC, ioInterrupt, localInterrupt
    }

    /// Interrupt types of the interrupt assignment entries (MP spec table 4-8).
    enum InterruptType: UInt8 {
        case int = 0, nmi, smi, extINT
    }

    /// The table for `configuration` with its floating pointer at `base`.
    ///
    /// `base` must be 16-byte aligned and the table must end at or below
    /// 1 MiB: in the BIOS ROM area 0xf0000-0xfffff or the last KiB of base
    /// memory, two of the places the specification tells an OS to search.
    public static func build(_ configuration: MPConfiguration, at base: GuestAddress) throws(MPTableError) -> MPTable {
        try validate(configuration)
        guard base.rawValue % 16 == 0 else { throw .misalignedBase(base) }
        let oemID = try identifier("OEM id", configuration.oemID, length: 8)
        let productID = try identifier("product id", configuration.productID, length: 12)

        var entries = ByteBuffer()
        var count: UInt16 = 0
        for (index, apicID) in configuration.apicIDs.enumerated() {
            entries.append([EntryType.processor.rawValue, apicID, configuration.localAPICVersion])
            entries.append(UInt8(index == 0 ? 0b11 : 0b01))  // EN, and BP for the bootstrap processor
            entries.append(configuration.cpuSignature)
            entries.append(configuration.featureFlags)
            entries.append([UInt8](repeating: 0, count: 8))
            count += 1
        }
        entries.append([EntryType.bus.rawValue, isaBusID] + Array("ISA   ".utf8))
        count += 1
        entries.append([EntryType.ioAPIC.rawValue, configuration.ioAPICID, configuration.ioAPICVersion, 1])  // EN
        entries.append(configuration.ioAPICAddress)
        count += 1
        for irq in UInt8(0)..<16 where irq != 2 {  // IRQ 2 is the cascade from the slave 8259: no device
            let pin = configuration.isaIRQPins[irq] ?? irq
            entries.append([EntryType.ioInterrupt.rawValue, InterruptType.int.rawValue])
            entries.append(UInt16(0))  // polarity and trigger as the ISA bus says: active high, edge
            entries.append([isaBusID, irq, configuration.ioAPICID, pin])
            count += 1
        }
        for (type, lint) in [(InterruptType.extINT, UInt8(0)), (.nmi, 1)] {
            entries.append([EntryType.localInterrupt.rawValue, type.rawValue])
            entries.append(UInt16(0))
            entries.append([isaBusID, 0, 0xff, lint])  // destination 0xff: every local APIC
            count += 1
        }

        let tableAddress = base.rawValue + UInt64(floatingPointerLength)
        var table = ByteBuffer()
        table.append(Array("PCMP".utf8))
        table.append(UInt16(headerLength + entries.bytes.count))
        table.append([specRevision, 0])  // checksum, below
        table.append(oemID + productID)
        table.append(UInt32(0))  // no OEM table
        table.append(UInt16(0))
        table.append(count)
        table.append(configuration.localAPICAddress)
        table.append(UInt16(0))  // no extended entries
        table.append([0, 0])  // extended checksum, reserved
        table.append(entries.bytes)
        table.bytes[7] = checksum(table.bytes)

        var pointer = ByteBuffer()
        pointer.append(Array("_MP_".utf8))
        pointer.append(UInt32(tableAddress))
        pointer.append([1, specRevision, 0, 0, 0, 0, 0, 0])  // length in 16-byte units, revision, checksum, features 1-5
        pointer.bytes[10] = checksum(pointer.bytes)

        let bytes = pointer.bytes + table.bytes
        let (end, overflow) = base.rawValue.addingReportingOverflow(UInt64(bytes.count))
        guard !overflow, end <= 0x10_0000 else { throw .outsideSearchArea(base: base, size: UInt64(bytes.count)) }
        return MPTable(base: base, configurationTableAddress: GuestAddress(tableAddress), bytes: bytes)
    }

    private static func validate(_ configuration: MPConfiguration) throws(MPTableError) {
        guard !configuration.apicIDs.isEmpty else { throw .noProcessors }
        var seen = Set<UInt8>()
        for id in configuration.apicIDs {
            guard id != 0xff else { throw .invalidAPICID(id) }
            guard seen.insert(id).inserted else { throw .duplicateAPICID(id) }
        }
        for (irq, pin) in configuration.isaIRQPins.sorted(by: { $0.key < $1.key }) where irq > 15 || pin > 23 {
            throw .invalidIRQPin(irq: irq, pin: pin)
        }
    }

    private static func identifier(_ field: String, _ value: String, length: Int) throws(MPTableError) -> [UInt8] {
        let bytes = Array(value.utf8)
        guard bytes.count == length, bytes.allSatisfy({ (0x20...0x7e).contains($0) }) else {
            throw .invalidIdentifier(field: field, value: value, length: length)
        }
        return bytes
    }

    /// The byte that makes `bytes` sum to zero modulo 256 when it replaces a zero among them.
    static func checksum(_ bytes: [UInt8]) -> UInt8 { 0 &- bytes.reduce(0, &+) }
}

/// Little-endian bytes appended in order.
private struct ByteBuffer {
    var bytes: [UInt8] = []
    mutating func append(_ more: [UInt8]) { bytes += more }
    mutating func append<T: FixedWidthInteger>(_ value: T) { bytes += littleEndianBytes(value, T.bitWidth / 8) }
}
