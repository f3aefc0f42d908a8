/// Why a vCPU stopped running guest code and came back to the VMM.
///
/// Everything is copied out of KVM's shared `kvm_run` page, so a `VMExit` is a
/// plain value: tests can build one, compare it and keep it in a trace.
public enum VMExit: Hashable, Sendable {
    /// `OUT`/`OUTS`: `count` elements of `size` bytes written to `port`.
    case ioOut(port: UInt16, size: UInt8, count: UInt32, data: IOData)
    /// `IN`/`INS`: `count` elements of `size` bytes to read from `port`.
    /// Answer with ``VirtualCPU/completeRead(_:)`` before running again.
    case ioIn(port: UInt16, size: UInt8, count: UInt32)
    /// A write to a guest-physical address with no RAM behind it.
    case mmioWrite(address: GuestAddress, data: IOData)
    /// A read from a guest-physical address with no RAM behind it.
    /// Answer with ``VirtualCPU/completeRead(_:)`` before running again.
    case mmioRead(address: GuestAddress, size: UInt8)
    /// The guest executed `HLT`.
    case halt
    /// The guest shut down, e.g. by a triple fault.
    case shutdown
    /// The CPU refused to enter the guest; `hardwareReason` is the VMX/SVM code.
    case failEntry(hardwareReason: UInt64, cpu: UInt32)
    /// KVM could not handle the exit itself (for example an instruction it cannot
    /// emulate: suberror 1, `KVM_INTERNAL_ERROR_EMULATION`).
    case internalError(suberror: UInt32, data: [UInt64])
    /// A system event such as a reset or shutdown request (`KVM_SYSTEM_EVENT_*`).
    case systemEvent(SystemEvent, flags: [UInt64])
    /// A debug exception: single step, breakpoint or watchpoint.
    case debug(DebugExitInfo)
    /// `KVM_RUN` returned early because the VMM asked it to (a signal or `immediate_exit`).
    case interrupted
    /// An exit reason this VMM does not handle, with KVM's number for it.
    case unknown(reason: UInt32, hardwareReason: UInt64)
}

/// What KVM reports with a debug exit (`struct kvm_debug_exit_arch`).
public struct DebugExitInfo: Hashable, Sendable {
    /// The exception vector: 1 (#DB) for single step and hardware breakpoints, 3 (#BP) for int3.
    public var exception: UInt32
    /// The guest RIP (linear address) of the instruction concerned.
    public var pc: UInt64
    public var dr6: UInt64
    public var dr7: UInt64

    public init(exception: UInt32, pc: UInt64, dr6: UInt64, dr7: UInt64) {
        self.exception = exception
        self.pc = pc
        self.dr6 = dr6
        self.dr7 = dr7
    }

    /// The hardware slots (0-3) whose condition was met, from DR6's B0-B3.
    public var firedSlots: [Int] { (0..<4).filter { dr6 & (1 << UInt64($0)) != 0 } }

    /// Whether a single step ended here (DR6.BS).
    public var isSingleStep: Bool { dr6 & (1 << 14) != 0 }
}
