/// The in-kernel interrupt controllers `KVMVirtualMachine.createIRQChip()` makes.
public struct IRQChipState: Codable, Hashable, Sendable {
    public var masterPIC: PICState
    public var slavePIC: PICState
    public var ioapic: IOAPICState

    public init(masterPIC: PICState, slavePIC: PICState, ioapic: IOAPICState) {
        self.masterPIC = masterPIC
        self.slavePIC = slavePIC
        self.ioapic = ioapic
    }
}
