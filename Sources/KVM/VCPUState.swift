import VMCore

/// Everything KVM holds for one vCPU, enough to resume it in another VM (or
/// another process or host). CPUID is not part of it: the machine sets the
/// same CPUID on the new vCPU before `KVMVCPU.restoreState(_:)`, because KVM
/// checks XSAVE, MSR and CR4 values against it.
public struct VCPUState: Codable, Hashable, Sendable {
    public var mpState: MPState
    public var registers: Registers
    public var specialRegisters: SpecialRegisterState
    public var floatingPoint: FloatingPointState
    /// Empty where the host has no XSAVE (`KVM_CAP_XCRS` missing).
    public var xcrs: [XCR]
    public var debugRegisters: DebugRegisters
    /// The local APIC's 1 KiB register page, or nil for a vCPU without an
    /// in-kernel local APIC (a VM without an irqchip).
    public var lapic: [UInt8]?
    /// In the order they were read; see `KVMSystem.migratableMSRIndices()`.
    public var msrs: [MSREntry]
    public var events: VCPUEvents
    /// The guest's TSC frequency, or nil where KVM cannot report it.
    public var tscKHz: UInt32?

    public init(
        mpState: MPState, registers: Registers, specialRegisters: SpecialRegisterState, floatingPoint: FloatingPointState,
        xcrs: [XCR], debugRegisters: DebugRegisters, lapic: [UInt8]?, msrs: [MSREntry], events: VCPUEvents, tscKHz: UInt32?
    ) {
        self.mpState = mpState
        self.registers = registers
        self.specialRegisters = specialRegisters
        self.floatingPoint = floatingPoint
        self.xcrs = xcrs
        self.debugRegisters = debugRegisters
        self.lapic = lapic
        self.msrs = msrs
        self.events = events
        self.tscKHz = tscKHz
    }
}
