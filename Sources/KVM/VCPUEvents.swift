internal import CKVM

/// Events KVM holds for a vCPU between instructions (`struct kvm_vcpu_events`):
/// an exception or interrupt being delivered, NMI and SMI state, the interrupt
/// shadow after `sti`/`mov ss`, and a latched INIT. Losing these on restore
/// drops an interrupt or re-runs a half-delivered exception.
public struct VCPUEvents: Codable, Hashable, Sendable {
    /// An exception injected into (or pending for) the guest.
    public struct Exception: Codable, Hashable, Sendable {
        public var injected: Bool = false
        public var vector: UInt8 = 0
        public var hasErrorCode: Bool = false
        /// Raised but not yet injected (reported apart from `injected` only
        /// when `KVM_CAP_EXCEPTION_PAYLOAD` is enabled).
        public var pending: Bool = false
        public var errorCode: UInt32 = 0
        /// Whether `payload` holds the exception's payload (CR2 for #PF, DR6 for #DB).
        public var hasPayload: Bool = false
        public var payload: UInt64 = 0
        public init() {}
    }

    /// An external or software interrupt being injected.
    public struct Interrupt: Codable, Hashable, Sendable {
        public var injected: Bool = false
        public var vector: UInt8 = 0
        public var soft: Bool = false
        /// The interrupt shadow: `KVM_X86_SHADOW_INT_MOV_SS` (1) and/or `KVM_X86_SHADOW_INT_STI` (2).
        public var shadow: UInt8 = 0
        public init() {}
    }

    /// Non-maskable interrupt state.
    public struct NMI: Codable, Hashable, Sendable {
        public var injected: Bool = false
        public var pending: Bool = false
        /// NMIs are blocked (the guest has not yet executed `iret` after one).
        public var masked: Bool = false
        public init() {}
    }

    /// System-management interrupt and mode state.
    public struct SMI: Codable, Hashable, Sendable {
        public var inSMM: Bool = false
        public var pending: Bool = false
        public var smmInsideNMI: Bool = false
        /// An INIT arrived while in SMM and waits for the vCPU to leave it.
        public var latchedINIT: Bool = false
        public init() {}
    }

    public var exception = Exception()
    public var interrupt = Interrupt()
    public var nmi = NMI()
    public var sipiVector: UInt32 = 0
    /// Which optional parts KVM filled in (`KVM_VCPUEVENT_VALID_*`); handed back
    /// unchanged on restore so KVM reads exactly the parts it wrote.
    public var flags: UInt32 = 0
    public var smi = SMI()
    /// A triple fault KVM has yet to turn into a shutdown exit (`KVM_CAP_X86_TRIPLE_FAULT_EVENT`).
    public var tripleFaultPending: Bool = false

    public init() {}

    init(_ e: kvm_vcpu_events) {
        exception.injected = e.exception.injected != 0
        exception.vector = e.exception.nr
        exception.hasErrorCode = e.exception.has_error_code != 0
        exception.pending = e.exception.pending != 0
        exception.errorCode = e.exception.error_code
        exception.hasPayload = e.exception_has_payload != 0
        exception.payload = e.exception_payload
        interrupt.injected = e.interrupt.injected != 0
        interrupt.vector = e.interrupt.nr
        interrupt.soft = e.interrupt.soft != 0
        interrupt.shadow = e.interrupt.shadow
        nmi.injected = e.nmi.injected != 0
        nmi.pending = e.nmi.pending != 0
        nmi.masked = e.nmi.masked != 0
        sipiVector = e.sipi_vector
        flags = e.flags
        smi.inSMM = e.smi.smm != 0
        smi.pending = e.smi.pending != 0
        smi.smmInsideNMI = e.smi.smm_inside_nmi != 0
        smi.latchedINIT = e.smi.latched_init != 0
        tripleFaultPending = e.triple_fault.pending != 0
    }

    var kvm: kvm_vcpu_events {
        var e = kvm_vcpu_events()
        e.exception.injected = exception.injected ? 1 : 0
        e.exception.nr = exception.vector
        e.exception.has_error_code = exception.hasErrorCode ? 1 : 0
        e.exception.pending = exception.pending ? 1 : 0
        e.exception.error_code = exception.errorCode
        e.exception_has_payload = exception.hasPayload ? 1 : 0
        e.exception_payload = exception.payload
        e.interrupt.injected = interrupt.injected ? 1 : 0
        e.interrupt.nr = interrupt.vector
        e.interrupt.soft = interrupt.soft ? 1 : 0
        e.interrupt.shadow = interrupt.shadow
        e.nmi.injected = nmi.injected ? 1 : 0
        e.nmi.pending = nmi.pending ? 1 : 0
        e.nmi.masked = nmi.masked ? 1 : 0
        e.sipi_vector = sipiVector
        e.flags = flags
        e.smi.smm = smi.inSMM ? 1 : 0
        e.smi.pending = smi.pending ? 1 : 0
        e.smi.smm_inside_nmi = smi.smmInsideNMI ? 1 : 0
        e.smi.latched_init = smi.latchedINIT ? 1 : 0
        e.triple_fault.pending = tripleFaultPending ? 1 : 0
        return e
    }
}
