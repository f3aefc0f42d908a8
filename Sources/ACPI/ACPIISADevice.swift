/// A legacy PC device at fixed I/O ports, such as a 16550 UART or the i8042,
/// that the DSDT describes under `\_SB` with its ports and ISA IRQs.
///
/// On a hardware-reduced platform Linux sets up no legacy PIC, so it maps an
/// ISA IRQ to an I/O APIC input only when a device's `_CRS` names it. A UART
/// the DSDT leaves out is still found at 0x3f8, but its `request_irq(4)`
/// fails and the console cannot be opened: list every such device. (On a
/// full ACPI platform the ISA IRQs are mapped anyway; the listing then lets
/// the OS bind drivers without probing.)
public struct ACPIISADevice: Hashable, Sendable {
    /// A range of I/O ports the device decodes.
    public struct PortRange: Hashable, Sendable {
        public var base: UInt16
        /// At least one port; the descriptor's length is one byte.
        public var length: UInt8

        public init(base: UInt16, length: UInt8) {
            self.base = base
            self.length = length
        }
    }

    /// The device's AML name under `\_SB`: four characters, `A`-`Z` or `_`
    /// first, then `A`-`Z`, `0`-`9` or `_` (`COM1`, `KBD_`).
    public var name: String
    /// The `_HID`, a PNP ID of three letters and four hex digits (`PNP0501`).
    public var hardwareID: String
    /// The `_UID`, unique among devices of one hardware ID.
    public var uniqueID: UInt32
    /// The ports, each an `IO (Decode16, ...)` descriptor with a fixed base.
    public var ports: [PortRange]
    /// ISA IRQs (0-15), each an `IRQNoFlags` descriptor: edge-triggered,
    /// active high, exclusive, as on the ISA bus. The MADT's interrupt source
    /// overrides map them to GSIs.
    public var irqs: [UInt8]

    public init(name: String, hardwareID: String, uniqueID: UInt32 = 0, ports: [PortRange], irqs: [UInt8]) {
        self.name = name
        self.hardwareID = hardwareID
        self.uniqueID = uniqueID
        self.ports = ports
        self.irqs = irqs
    }

    /// Whether `hardwareID` has the PNP ID form `AAA####`: the form Linux's
    /// PnP layer requires before it binds a driver such as `serial8250` or `i8042`.
    var hasValidHardwareID: Bool {
        let bytes = Array(hardwareID.utf8)
        let isHex: (UInt8) -> Bool = { (0x30...0x39).contains($0) || (0x41...0x46).contains($0) }
        return bytes.count == 7 && bytes.prefix(3).allSatisfy { (0x41...0x5a).contains($0) } && bytes.dropFirst(3).allSatisfy(isHex)
    }

    /// The `_CRS` resource template (ACPI 6.5, 6.4.2): for each range an I/O
    /// port descriptor (16-bit decode, minimum = maximum = base, alignment 1);
    /// for each IRQ a two-byte-mask IRQ descriptor; then the end tag with a
    /// zero checksum ("no checksum").
    var resources: [UInt8] {
        let io = ports.flatMap { range -> [UInt8] in
            let low = UInt8(truncatingIfNeeded: range.base)
            let high = UInt8(truncatingIfNeeded: range.base >> 8)
            return [0x47, 0x01, low, high, low, high, 0x01, range.length]
        }
        let interrupts = irqs.flatMap { irq -> [UInt8] in
            let mask = UInt16(1) << UInt16(irq & 0xf)
            return [0x22, UInt8(truncatingIfNeeded: mask), UInt8(truncatingIfNeeded: mask >> 8)]
        }
        return io + interrupts + [0x79, 0x00]
    }

    /// The device's AML: `Device (name) { _HID, _UID, _CRS }`.
    var aml: [UInt8] { AML.device(name, hardwareID: hardwareID, uniqueID: uniqueID, resources: resources) }
}
