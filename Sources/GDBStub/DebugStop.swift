/// Why the target stopped, as a stop reply reports it.
public struct DebugStop: Hashable, Sendable {
    public enum Reason: Hashable, Sendable {
        /// A single step finished.
        case step
        /// A `Z0` breakpoint, whether a hardware slot or a planted `int3` carried it.
        case softwareBreakpoint
        /// Debug-register slot `n` (0-3) fired; the engine knows which
        /// breakpoint or watchpoint it holds.
        case slot(Int)
        /// Ctrl-C, or the stub stopping the target when a debugger attached.
        case interrupted
        /// The guest ended the machine (the debug-exit port, power off) with this status.
        case exited(status: UInt8)
        /// The machine ended some other way (a triple fault, an error).
        case terminated
    }

    /// The thread (vCPU index, from 0) that stopped.
    public var vcpu: Int
    public var reason: Reason

    public init(vcpu: Int, reason: Reason) {
        self.vcpu = vcpu
        self.reason = reason
    }

    /// Whether the target is gone after this stop.
    public var ended: Bool {
        switch reason {
        case .exited, .terminated: return true
        default: return false
        }
    }
}
