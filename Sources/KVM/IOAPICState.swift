internal import CKVM

/// The in-kernel IOAPIC (`struct kvm_ioapic_state`).
public struct IOAPICState: Codable, Hashable, Sendable {
    /// The number of redirection-table entries (pins) KVM's IOAPIC has.
    public static let pinCount = Int(KVM_IOAPIC_NUM_PINS)

    public var baseAddress: UInt64 = 0xfec0_0000
    /// The register the guest last selected through IOREGSEL.
    public var registerSelect: UInt32 = 0
    public var id: UInt32 = 0
    /// Pins currently asserted.
    public var irr: UInt32 = 0
    /// One 64-bit redirection entry per pin, exactly `pinCount` of them.
    public var redirectionTable: [UInt64] = Array(repeating: 1 << 16, count: pinCount)

    public init() {}

    // Swift cannot import `redirtbl` (an array of unions with bit-fields); it
    // is the struct's last member, one 64-bit entry per pin.
    private static let tableOffset = MemoryLayout<kvm_ioapic_state>.size - pinCount * 8

    init(_ s: kvm_ioapic_state) {
        baseAddress = s.base_address
        registerSelect = s.ioregsel
        id = s.id
        irr = s.irr
        redirectionTable = withUnsafeBytes(of: s) { raw in
            (0..<Self.pinCount).map { raw.loadUnaligned(fromByteOffset: Self.tableOffset + $0 * 8, as: UInt64.self) }
        }
    }

    func kvm() throws(KVMError) -> kvm_ioapic_state {
        guard redirectionTable.count == Self.pinCount else {
            throw .stateSizeMismatch(
                field: "IOAPIC redirection table", expected: Self.pinCount, actual: redirectionTable.count,
                operation: .setIRQChip(chip: UInt32(KVM_IRQCHIP_IOAPIC)))
        }
        var s = kvm_ioapic_state()
        s.base_address = baseAddress
        s.ioregsel = registerSelect
        s.id = id
        s.irr = irr
        withUnsafeMutableBytes(of: &s) { raw in
            for (i, entry) in redirectionTable.enumerated() {
                raw.storeBytes(of: entry, toByteOffset: Self.tableOffset + i * 8, as: UInt64.self)
            }
        }
        return s
    }
}
