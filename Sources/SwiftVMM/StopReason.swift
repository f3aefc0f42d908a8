import VMCore

/// Why a machine stopped running.
public enum StopReason: Hashable, Sendable, CustomStringConvertible {
    /// The guest wrote `status` to the debug-exit port.
    case debugExit(status: UInt32)
    /// The guest executed HLT and nothing can wake it: with interrupts disabled,
    /// or with no device that raises interrupts.
    case halted(interruptsEnabled: Bool)
    /// The guest shut down (a triple fault, on hardware).
    case shutdown
    /// KVM could not continue (suberror 1: an instruction it cannot emulate;
    /// on some back ends also a triple fault).
    case internalError(suberror: UInt32, data: [UInt64])
    /// The CPU refused to enter the guest.
    case failEntry(hardwareReason: UInt64)
    /// A device asked for a reset, or KVM reported a reset system event.
    case reset
    /// A device asked for power-off, or KVM reported a shutdown system event.
    case powerOff
    /// The guest entered S3 (suspend to RAM). `run()` never returns this: it
    /// waits for a wake event and resumes the guest. A caller that drives
    /// exits itself (`nextExit()`, `dispatch(_:)`) gets it and calls `wake()`.
    case suspended
    /// The VMM asked the vCPU to stop (a signal).
    case interrupted
    /// Someone asked the machine to stop (`Machine.requestStop()`: the console's
    /// Ctrl-A x, a signal to the VMM).
    case stopRequested
    /// The machine moved to another process (`Machine.migrate`): it runs there now.
    case migrated
    /// The run's deadline passed before the guest stopped by itself.
    case deadlineExpired
    /// An exit no device or handler takes (a debug exit with no debugger, an unknown reason).
    case unhandled(VMExit)

    /// The status `swiftvmm` exits with.
    public var exitStatus: Int32 {
        switch self {
        case .debugExit(let status): return Int32(status & 0xff)
        case .halted(interruptsEnabled: false), .powerOff, .reset, .stopRequested, .suspended, .migrated: return 0
        default: return 1
        }
    }

    /// Whether this is a guest failure worth a register dump.
    public var isFailure: Bool {
        switch self {
        case .debugExit, .halted(interruptsEnabled: false), .powerOff, .reset, .stopRequested, .suspended, .migrated: return false
        default: return true
        }
    }

    public var description: String {
        switch self {
        case .debugExit(let status): return "guest wrote \(hex(status)) to the debug-exit port"
        case .halted(false): return "guest halted with interrupts disabled; nothing can wake it"
        case .halted(true): return "guest halted waiting for an interrupt, but this machine has no interrupt source to wake it"
        case .shutdown: return "guest shut down (triple fault)"
        case .internalError(let suberror, let data):
            let kind = suberror == 1 ? " (emulation failure: an instruction KVM cannot emulate, or a triple fault on this host)" : ""
            return "KVM internal error, suberror \(suberror)\(kind); data \(data.map { hex($0) })"
        case .failEntry(let reason): return "the CPU refused to enter the guest, hardware reason \(hex(reason))"
        case .reset: return "guest reset the machine"
        case .powerOff: return "guest powered the machine off"
        case .suspended: return "guest suspended the machine to RAM (S3)"
        case .interrupted: return "stopped by the VMM"
        case .stopRequested: return "stopped on request"
        case .migrated: return "the machine migrated; it runs on the destination now"
        case .deadlineExpired: return "the guest was still running when its deadline passed"
        case .unhandled(let exit): return "unhandled exit \(exit)"
        }
    }
}
