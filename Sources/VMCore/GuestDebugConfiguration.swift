/// How a vCPU is debugged from the VMM (`KVM_SET_GUEST_DEBUG`): single
/// stepping, `int3` sent to the VMM instead of the guest, and up to four
/// hardware breakpoints or watchpoints. Hits come back as `.debug` exits;
/// `DebugExitInfo.firedSlots` says which slot fired.
public struct GuestDebugConfiguration: Codable, Hashable, Sendable {
    /// The CPU has four debug-register slots.
    public static let slotCount = 4

    public var singleStep: Bool
    /// `int3` ends in a `.debug` exit (exception 3) where the host's KVM
    /// reports it (not on every host: see the README's GDB section).
    public var softwareBreakpoints: Bool
    /// Slot `i` is DRi; `nil` slots are off. At most `slotCount`.
    public var slots: [HardwareBreakpoint?]

    public init(singleStep: Bool = false, softwareBreakpoints: Bool = false, slots: [HardwareBreakpoint?] = []) {
        self.singleStep = singleStep
        self.softwareBreakpoints = softwareBreakpoints
        self.slots = slots
    }

    /// Whether anything is on.
    public var isEnabled: Bool { singleStep || softwareBreakpoints || slots.contains { $0 != nil } }

    /// DR7 for the slots.
    public var dr7: UInt64 {
        slots.prefix(Self.slotCount).enumerated().reduce(0) { dr7, slot in dr7 | (slot.element?.dr7Bits(slot: slot.offset) ?? 0) }
    }
}
