import VMCore

/// Why a set of ACPI tables could not be built from an `ACPIConfiguration`.
///
/// Every case is something a user's configuration (vCPU count, addresses,
/// identifiers) can cause, so it is thrown rather than trapped.
public enum ACPIError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A machine needs at least one processor.
    case noProcessors
    /// The MADT's xAPIC entries number processors with one byte, and UID 0xff
    /// means "all processors" in a Local APIC NMI entry, so at most 255 fit.
    case tooManyProcessors(count: Int)
    /// APIC id 0xff is the xAPIC broadcast id and cannot name one processor.
    case invalidAPICID(UInt8)
    /// Two processors were given the same APIC id.
    case duplicateAPICID(UInt8)
    /// The RSDP must start on a 16-byte boundary (ACPI 6.5, 5.2.5.1).
    case misalignedBase(GuestAddress)
    /// The RSDP's and RSDT's table pointers are 32 bits wide, so every table
    /// must end at or below 4 GiB.
    case tablesAbove4GiB(base: GuestAddress, size: UInt64)
    /// An OEM or vendor identifier is not exactly `length` printable ASCII characters.
    case invalidIdentifier(field: String, value: String, length: Int)
    /// SLP_TYP is a 3-bit field of the sleep control register.
    case invalidSleepType(UInt8)
    /// SCI_INT must name an ISA IRQ (0-15).
    case invalidSCIInterrupt(UInt16)
    /// An `ACPIISADevice` the DSDT cannot describe: `problem` says which field and what was expected.
    case invalidISADevice(name: String, problem: String)

    public var description: String {
        switch self {
        case .noProcessors:
            return "ACPI tables need at least one processor"
        case .tooManyProcessors(let count):
            return "\(count) processors do not fit in the MADT; at most 255 are supported"
        case .invalidAPICID(let id):
            return "APIC id \(hex(id)) is the broadcast id and cannot name a processor"
        case .duplicateAPICID(let id):
            return "APIC id \(hex(id)) is given to more than one processor"
        case .misalignedBase(let base):
            return "ACPI tables at \(base) are not 16-byte aligned, as the RSDP must be"
        case .tablesAbove4GiB(let base, let size):
            return "ACPI tables at \(base) (\(size) bytes) must end at or below 4 GiB"
        case .invalidIdentifier(let field, let value, let length):
            return "\(field) \"\(value)\" must be exactly \(length) printable ASCII characters"
        case .invalidSleepType(let value):
            return "sleep type \(value) does not fit in the 3-bit SLP_TYP field"
        case .invalidSCIInterrupt(let irq):
            return "SCI interrupt \(irq) is not an ISA IRQ (0-15)"
        case .invalidISADevice(let name, let problem):
            return "ISA device \"\(name)\": \(problem)"
        }
    }
}
