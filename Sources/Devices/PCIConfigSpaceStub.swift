import VMCore

/// PCI configuration mechanism #1 with no devices behind it: the
/// CONFIG_ADDRESS / CONFIG_DATA pair at 0xcf8-0xcff, registered with length
/// `portCount` at 0xcf8.
///
/// | offset | register       | behaviour                                       |
/// |--------|----------------|-------------------------------------------------|
/// | 0-3    | CONFIG_ADDRESS | a 32-bit access at offset 0 stores and reads back the address |
/// | 4-7    | CONFIG_DATA    | reads all ones ("no device"), ignores writes    |
///
/// Linux's `pci_check_type1` writes 0x80000000 to CONFIG_ADDRESS and reads
/// it back to decide whether mechanism #1 exists, so the address reads back
/// exactly as written, reserved bits included. As in the PCI Local Bus
/// specification (3.2.2.3.2), only a doubleword access at 0xcf8 reaches
/// CONFIG_ADDRESS; byte and word accesses in 0xcf8-0xcfb go on to the ISA
/// bus, where nothing answers, so they read all ones and change nothing.
///
/// Every configuration read then finds vendor ID 0xffff, which is how a
/// guest learns that a slot is empty, so it enumerates no PCI devices.
public final class PCIConfigSpaceStub: PortIODevice {
    /// The ports the mechanism decodes: CONFIG_ADDRESS and CONFIG_DATA.
    public static let portCount: UInt16 = 8

    /// CONFIG_ADDRESS's offset; CONFIG_DATA, at 4-7, needs no name as it never answers.
    private static let configAddressOffset: UInt16 = 0

    /// CONFIG_ADDRESS bit 31: the next CONFIG_DATA access is a configuration
    /// cycle. Named for documentation; with no devices, both kinds read all ones.
    public static let enableBit: UInt32 = 0b1000_0000_0000_0000_0000_0000_0000_0000

    /// The last doubleword written to CONFIG_ADDRESS; 0 at reset.
    public private(set) var configAddress: UInt32 = 0

    /// A host bridge with an empty bus.
    public init() {}

    /// CONFIG_ADDRESS, as a plain value for snapshots, clones and migration:
    /// a guest may have written it and be about to touch CONFIG_DATA.
    public struct State: Codable, Hashable, Sendable {
        /// CONFIG_ADDRESS as last written, reserved bits included (they read back).
        public var configAddress: UInt32

        /// A state from its field.
        public init(configAddress: UInt32) {
            self.configAddress = configAddress
        }
    }

    /// The current state. Taking it changes nothing.
    public var state: State { State(configAddress: configAddress) }

    /// Replaces CONFIG_ADDRESS with the saved one. Every 32-bit value is one
    /// the guest could have written, so this never throws; it is declared
    /// `throws` to match the other devices.
    public func restore(_ state: State) throws(DeviceStateError) {
        configAddress = state.configAddress
    }

    public func read(offset: UInt16, size: Int) -> UInt64 {
        if offset == Self.configAddressOffset && size == 4 { return UInt64(configAddress) }
        return AccessWidth.mask(size: size)
    }

    public func write(offset: UInt16, size: Int, value: UInt64) -> DeviceRequest? {
        if offset == Self.configAddressOffset && size == 4 {
            configAddress = UInt32(truncatingIfNeeded: value)
        }
        // CONFIG_DATA writes go to a device that is not there.
        return nil
    }
}
