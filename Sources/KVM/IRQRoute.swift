/// One route of the in-kernel interrupt routing table: interrupt line `gsi`
/// drives pin `pin` of `chip` (`struct kvm_irq_routing_irqchip`).
public struct IRQRoute: Hashable, Sendable {
    /// The in-kernel interrupt controllers, numbered as KVM numbers them.
    public enum Chip: UInt32, Sendable {
        case masterPIC = 0
        case slavePIC = 1
        case ioapic = 2
    }

    public var gsi: UInt32
    public var chip: Chip
    public var pin: UInt32

    public init(gsi: UInt32, chip: Chip, pin: UInt32) {
        self.gsi = gsi
        self.chip = chip
        self.pin = pin
    }
}
