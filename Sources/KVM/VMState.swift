/// What KVM holds for a VM outside its vCPUs and memory. The irqchip and PIT
/// are nil for a VM that never created them, and restore leaves them alone then.
public struct VMState: Codable, Hashable, Sendable {
    public var irqchip: IRQChipState?
    public var pit: PITState?
    public var clock: ClockState

    public init(irqchip: IRQChipState?, pit: PITState?, clock: ClockState) {
        self.irqchip = irqchip
        self.pit = pit
        self.clock = clock
    }
}
