/// A memory-mapped device the DSDT describes under `\_SB`, so that an OS
/// finds it without probing: a hardware ID, its register window and its
/// interrupt. Linux binds `LNRO0005` to `virtio_mmio` this way.
public struct ACPIMMIODevice: Hashable, Sendable {
    /// The `_HID`, such as `"LNRO0005"` for a virtio-mmio transport.
    public var hardwareID: String
    /// The `_UID`, unique among devices of one hardware ID.
    public var uniqueID: UInt32
    /// The register window: a `Memory32Fixed` descriptor.
    public var base: UInt32
    public var length: UInt32
    /// The GSI, described as an edge-triggered, active-high, exclusive interrupt.
    public var gsi: UInt32

    public init(hardwareID: String, uniqueID: UInt32, base: UInt32, length: UInt32, gsi: UInt32) {
        self.hardwareID = hardwareID
        self.uniqueID = uniqueID
        self.base = base
        self.length = length
        self.gsi = gsi
    }

    /// The `_CRS` resource template (ACPI 6.5, 6.4): a 32-bit fixed memory
    /// range, read-write; an extended interrupt, consumer, edge, active high;
    /// the end tag with a zero checksum (which means "no checksum").
    var resources: [UInt8] {
        func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        let memory: [UInt8] = [0x86, 0x09, 0x00, 0x01] + le32(base) + le32(length)
        let interrupt: [UInt8] = [0x89, 0x06, 0x00, 0x03, 0x01] + le32(gsi)
        return memory + interrupt + [0x79, 0x00]
    }

    /// The device's AML, named `name` (four characters).
    func aml(name: String) -> [UInt8] {
        AML.device(name, hardwareID: hardwareID, uniqueID: uniqueID, resources: resources)
    }
}
