import SwiftVMM
import VMCore

/// DR6.BS: the debug trap was a single step (Intel SDM 17.2.3).
private let dr6SingleStep: UInt64 = 1 << 14

/// How the instruction of an access exit ended once KVM finished it.
enum InstructionEnd {
    /// Done, at an instruction boundary; no further guest code ran.
    case finished
    /// Done, and single-stepping reported it with this `.debug` exit.
    case trapped(VMExit)
    /// Handling the instruction's accesses stopped the machine.
    case stopped(StopReason)
}

extension TestVM {
    /// Executes exactly one guest instruction, single-stepping already on,
    /// and returns the RIP after it.
    ///
    /// A port or MMIO instruction exits to the VMM half done: KVM finishes it
    /// (RIP, the value of an IN) only on the next `KVM_RUN`, and on some back
    /// ends (PVM) that run goes on to the next instruction before it reports
    /// the step. So once such an exit is handled, the instruction is finished
    /// with `Machine.completePendingAccess()` (`immediate_exit`), which runs
    /// no guest code: the step ends there.
    func stepOneInstruction() throws(VMTestError) -> UInt64 {
        let awaited = "the end of a single step"
        // An access exit a run call left pending is an instruction under way:
        // handling it and finishing it is the step.
        if let exit = pending, Self.isAccess(exit) {
            if let reason = try settlePending() { throw error(.stoppedBeforeMatch(reason, waitingFor: awaited)) }
            if case .stopped(let reason) = try finishInstruction() { throw error(.stoppedBeforeMatch(reason, waitingFor: awaited)) }
            return try registers().rip
        }
        // A breakpoint's debug trap is stepped over here (`resumeFromDebugExit`),
        // which leaves that step's trap for `runOnce` to return.
        if let reason = try settlePending() { throw error(.stoppedBeforeMatch(reason, waitingFor: awaited)) }
        while true {
            let exit = try runOnce(waitingFor: awaited)
            if case .debug = exit { return try registers().rip }
            let access = Self.isAccess(exit)
            if let reason = try settlePending() { throw error(.stoppedBeforeMatch(reason, waitingFor: awaited)) }
            if access {
                if case .stopped(let reason) = try finishInstruction() { throw error(.stoppedBeforeMatch(reason, waitingFor: awaited)) }
                return try registers().rip
            }
        }
    }

    /// Finishes the instruction of the access exit just handled, without
    /// running further guest code; the next elements of a `rep ins/outs`
    /// are handled as they come (devices and hypercalls see them).
    func finishInstruction() throws(VMTestError) -> InstructionEnd {
        while true {
            let next: VMExit?
            do { next = try machine.completePendingAccess() } catch { throw self.error(.machine(error.description)) }
            guard let next else { return .finished }
            trace.append(next)
            if case .debug = next {
                trace.annotateLast("the single step's trap")
                return .trapped(next)
            }
            pending = next
            pendingAnswered = false
            if let reason = try settlePending() { return .stopped(reason) }
        }
    }

    /// The trap a single step over an access would have reported, for a
    /// step that `finishInstruction()` ended without one.
    func singleStepTrap() throws(VMTestError) -> VMExit {
        .debug(DebugExitInfo(exception: 1, pc: try registers().rip, dr6: dr6SingleStep, dr7: 0))
    }

    /// A port or MMIO access, whose instruction KVM finishes on the next `KVM_RUN`.
    static func isAccess(_ exit: VMExit) -> Bool {
        switch exit {
        case .ioIn, .ioOut, .mmioRead, .mmioWrite: return true
        default: return false
        }
    }
}
