import KVM
import Logging
import VMCore

/// What every vCPU of a machine does with each exit: the one place exit
/// policy lives, shared by the bootstrap processor's loop and the
/// application processors' threads.
///
/// I/O goes to the buses through `ExitDispatcher` (under the bus lock when
/// other vCPUs may be using the devices) and reads are answered; a halt is
/// final only when nothing can wake the CPU; an instruction the host's KVM
/// could not emulate is carried out when `InstructionAssist` knows it; a kick
/// is handed back to the loop, which knows why it was kicked.
struct ExitPolicy {
    /// What the loop does next.
    enum Outcome: Hashable, Sendable {
        /// Run the guest again.
        case resume
        /// The vCPU was kicked out of `KVM_RUN`: the loop looks at the
        /// machine's lifecycle (stop, pause, console input) before running again.
        case kicked
        /// The machine must stop.
        case stop(StopReason)
    }

    let dispatcher: ExitDispatcher
    let platform: MachineConfiguration.Platform
    /// Taken around device access when several vCPUs share the buses; `nil`
    /// with one vCPU, whose exit path then takes no lock at all.
    let busLock: ThreadLock<Void>?
    /// What an attached debugger asked for (off unless one is attached), and
    /// the lifecycle its stops pause.
    let debug: DebugControl
    let lifecycle: MachineLifecycle
    /// Whether the guest's CPUID offers INVPCID (else `invpcid` is #UD; see `InstructionAssist`).
    var guestHasINVPCID = true
    /// Guest RAM and the guest's XSAVE layout, for the assists that touch memory or XSAVE state.
    var assistContext = AssistContext()

    /// Handles `exit`, which vCPU `id` (`vcpu`) just returned.
    func handle(_ exit: VMExit, on vcpu: inout KVMVCPU, id: UInt32, assisted: inout Int) throws(MachineError) -> Outcome {
        let debugging = debug.isActive
        if debugging, let outcome = try debug.intercept(exit, vcpu: vcpu, id: id, lifecycle: lifecycle) { return outcome }
        let action = busLock.map { lock in lock.withLock { _ in dispatcher.handle(exit) } } ?? dispatcher.handle(exit)
        switch action {
        case .resume:
            if debugging, let outcome = try debug.afterAccess(exit, vcpu: &vcpu, id: id, lifecycle: lifecycle) { return outcome }
            return .resume
        case .completeRead(let data):
            vcpu.completeRead(data)
            if debugging, let outcome = try debug.afterAccess(exit, vcpu: &vcpu, id: id, lifecycle: lifecycle) { return outcome }
            return .resume
        case .halt:
            // HLT reaches the VMM only without an in-kernel irqchip, where no
            // device raises interrupts: a halted CPU stays halted whatever
            // RFLAGS.IF says; report which it was.
            let enabled: Bool
            do { enabled = try vcpu.registers().interruptsEnabled } catch { throw .kvm(error) }
            return .stop(.halted(interruptsEnabled: enabled))
        case .stop(.interrupted):
            return .kicked
        case .stop(.internalError(1, let data)) where platform == .pc:
            var decoded = InstructionAssist(emulationFailure: data, guestHasINVPCID: guestHasINVPCID)
            if decoded == nil, InstructionAssist.instructionBytes(data).count < 15 {
                do {
                    decoded = try InstructionAssist.refetched(on: vcpu, context: assistContext, guestHasINVPCID: guestHasINVPCID)
                } catch { throw .kvm(error) }
            }
            guard let assist = decoded else { return .stop(.internalError(suberror: 1, data: data)) }
            do {
                guard try assist.perform(on: vcpu, context: assistContext) else {
                    return .stop(.internalError(suberror: 1, data: data))
                }
            } catch { throw .kvm(error) }
            assisted += 1
            dispatcher.logger.debug("carried out \(assist) for the guest")
            return .resume
        case .stop(let reason):
            return .stop(reason)
        }
    }
}
