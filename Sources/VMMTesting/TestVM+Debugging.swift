import GuestMemory
import SwiftVMM
import VMCore

/// The breakpoints and stepping a `TestVM` has asked KVM for.
struct DebugState: Equatable, Sendable {
    var hardwareBreakpoints: [UInt64] = []
    /// Address -> the guest's own byte that `int3` replaced.
    var softwareBreakpoints: [UInt64: UInt8] = [:]
    var singleStep = false
    /// Data watchpoints, in the slots after the hardware breakpoints, with
    /// the watched bytes' last value.
    var watchpoints: [Watched] = []

    struct Watched: Equatable, Sendable {
        var breakpoint: HardwareBreakpoint
        var value: [UInt8]
    }
}

/// The resume flag: set in RFLAGS, the CPU does not report an instruction
/// breakpoint again for the instruction it resumes at (Intel SDM 17.3.1.1).
private let rflagsRF: UInt64 = 1 << 16

extension TestVM {
    /// Stops the guest with a `.debug` exit (exception 1) before it executes
    /// the instruction at linear address `address`. Uses one of the CPU's
    /// four hardware breakpoints, so guest memory is untouched.
    public func setBreakpoint(at address: UInt64) throws(VMTestError) {
        guard !debug.hardwareBreakpoints.contains(address) else { return }
        guard debug.hardwareBreakpoints.count < 4 else {
            throw error(.invalidRequest("x86 has four hardware breakpoints; use setSoftwareBreakpoint(at:) for more"))
        }
        debug.hardwareBreakpoints.append(address)
        try applyDebugState()
    }

    public func removeBreakpoint(at address: UInt64) throws(VMTestError) {
        debug.hardwareBreakpoints.removeAll { $0 == address }
        try applyDebugState()
    }

    /// Stops the guest with a `.debug` exit (exception 3) when it reaches
    /// `address`, by writing `int3` there. `address` is guest-physical, which
    /// is the linear address for real-mode code at CS = 0 and for identity-mapped guests.
    /// When the guest is resumed, the original instruction runs and the breakpoint stays.
    public func setSoftwareBreakpoint(at address: UInt64) throws(VMTestError) {
        guard debug.softwareBreakpoints[address] == nil else { return }
        let original = try read(count: 1, at: address)[0]
        try write([0xcc], at: address)
        debug.softwareBreakpoints[address] = original
        try applyDebugState()
    }

    public func removeSoftwareBreakpoint(at address: UInt64) throws(VMTestError) {
        guard let original = debug.softwareBreakpoints.removeValue(forKey: address) else { return }
        try write([original], at: address)
        try applyDebugState()
    }

    /// With single-stepping on, every instruction ends in a `.debug` exit.
    public func setSingleStep(_ enabled: Bool) throws(VMTestError) {
        debug.singleStep = enabled
        try applyDebugState()
    }

    /// Executes exactly one guest instruction and returns the RIP after it.
    /// Exits the instruction causes (an OUT, a hypercall, an MMIO read) are
    /// handled as usual, and the instruction is finished before the step
    /// returns; with such an exit pending from a run call, the step finishes
    /// that instruction. A HLT or a fault that stops the machine throws.
    @discardableResult
    public func step(timeout: Duration? = nil) throws(VMTestError) -> UInt64 {
        let wasStepping = debug.singleStep
        try setSingleStep(true)
        defer { try? setSingleStep(wasStepping) }
        return try withDeadline(timeout, waitingFor: "a single step") { () throws(VMTestError) -> UInt64 in try stepOneInstruction() }
    }

    func applyDebugState() throws(VMTestError) {
        do {
            let slots = debug.hardwareBreakpoints.map { HardwareBreakpoint(address: $0) } + debug.watchpoints.map(\.breakpoint)
            // With a watchpoint the guest steps, so that writes KVM's emulator makes (which checks no data breakpoints) are seen too.
            try machine.setGuestDebug(
                GuestDebugConfiguration(
                    singleStep: debug.singleStep || !debug.watchpoints.isEmpty, softwareBreakpoints: !debug.softwareBreakpoints.isEmpty,
                    slots: slots))
        } catch { throw self.error(.machine(error.description)) }
    }

    /// Stops the guest with a `.debug` exit (exception 1, the slot in
    /// `DebugExitInfo.firedSlots`) right after an instruction that writes
    /// (or, `.readWrite`, accesses) the `length` bytes at linear `address`
    /// (1, 2, 4 or 8, aligned to the length). Uses a debug-register slot
    /// (four in all, shared with `setBreakpoint(at:)`). Where the host runs
    /// guest code in KVM's emulator (PVM: ring 0 and real mode), which checks
    /// no data breakpoints, the guest is stepped while a watchpoint is set and
    /// a change of the bytes is reported the same way (reads then go unseen).
    public func watch(address: UInt64, length: Int, on access: WatchAccess) throws(VMTestError) {
        let breakpoint = HardwareBreakpoint(address: address, trigger: access == .write ? .write : .readWrite, length: length)
        guard breakpoint.isValid else {
            throw error(.invalidRequest("a watchpoint covers 1, 2, 4 or 8 bytes aligned to its length, not \(length) at \(hex(address))"))
        }
        guard !debug.watchpoints.contains(where: { $0.breakpoint == breakpoint }) else { return }
        guard debug.hardwareBreakpoints.count + debug.watchpoints.count < GuestDebugConfiguration.slotCount else {
            throw error(.invalidRequest("x86 has four debug-register slots, shared by breakpoints and watchpoints; all are in use"))
        }
        debug.watchpoints.append(DebugState.Watched(breakpoint: breakpoint, value: try read(count: length, at: address)))
        try applyDebugState()
    }

    /// Removes the watchpoints at `address`.
    public func unwatch(address: UInt64) throws(VMTestError) {
        debug.watchpoints.removeAll { $0.breakpoint.address == address }
        try applyDebugState()
    }

    /// The next exit, with the single steps taken only to look at watched
    /// bytes left out, and a change of those bytes reported as its slot's debug exit.
    func nextExitWatching() throws(VMTestError) -> VMExit {
        while true {
            let exit: VMExit
            do { exit = try machine.nextExit() } catch { throw self.error(.machine(error.description)) }
            guard !debug.watchpoints.isEmpty, !debug.singleStep, case .debug(let info) = exit, info.exception == 1,
                info.firedSlots.isEmpty
            else { return exit }
            for (index, watched) in debug.watchpoints.enumerated() {
                guard let now = try? read(count: watched.breakpoint.length, at: watched.breakpoint.address), now != watched.value else {
                    continue
                }
                debug.watchpoints[index].value = now
                let slot = UInt64(debug.hardwareBreakpoints.count + index)
                return .debug(DebugExitInfo(exception: 1, pc: info.pc, dr6: info.dr6 | 1 << slot, dr7: info.dr7))
            }
        }
    }

    /// Lets the guest go on after a debug exit without stopping at the same
    /// breakpoint again: the breakpoint (the hardware one, or the `int3` byte)
    /// is lifted for one single step over the instruction, then put back.
    /// Re-entering with RFLAGS.RF would be the textbook way for hardware
    /// breakpoints, but not every KVM back end honours it (PVM does not).
    func resumeFromDebugExit(_ info: DebugExitInfo) throws(VMTestError) -> StopReason? {
        let software = info.exception == 3 && debug.softwareBreakpoints[info.pc] != nil
        let hardware = info.exception == 1 && info.dr6 & 0xf != 0 && debug.hardwareBreakpoints.contains(info.pc)
        guard software || hardware else { return nil }
        if software {
            try modifyRegisters { if $0.rip == info.pc &+ 1 { $0.rip = info.pc } }
            try write([debug.softwareBreakpoints[info.pc] ?? 0xcc], at: info.pc)
        }
        let savedBreakpoints = debug.hardwareBreakpoints
        debug.hardwareBreakpoints.removeAll { $0 == info.pc }
        let wasStepping = debug.singleStep
        debug.singleStep = true
        try applyDebugState()
        var reason: StopReason?
        stepping: while true {
            let exit: VMExit
            do { exit = try machine.nextExit() } catch { throw self.error(.machine(error.description)) }
            switch exit {
            case .debug:
                // A test that is single-stepping sees this step as its next exit.
                if wasStepping { deferredExit = exit }
                break stepping
            case .interrupted where machine.deadlineHasExpired:
                throw error(.timeout(.zero, waitingFor: "the step over the breakpoint at \(hex(info.pc))"))
            default:
                trace.append(exit)
                pending = exit
                pendingAnswered = false
                reason = try settlePending()
                if reason != nil { break stepping }
                guard Self.isAccess(exit) else { continue stepping }
                // Finish the access here: the next KVM_RUN would go on past
                // the instruction on back ends that do not report its step.
                switch try finishInstruction() {
                case .stopped(let stop): reason = stop
                case .trapped(let trap): if wasStepping { deferredExit = trap }
                case .finished: if wasStepping { deferredExit = try singleStepTrap() }
                }
                break stepping
            }
        }
        if software { try write([0xcc], at: info.pc) }
        debug.hardwareBreakpoints = savedBreakpoints
        debug.singleStep = wasStepping
        try applyDebugState()
        return reason
    }

    /// An internal error at a software breakpoint means the host's KVM could
    /// not deliver `int3` to the VMM (seen with the PVM back end).
    func softwareBreakpointFailure(_ exit: VMExit) throws(VMTestError) -> VMTestError? {
        guard case .internalError = exit, !debug.softwareBreakpoints.isEmpty else { return nil }
        let rip = try registers().rip
        guard debug.softwareBreakpoints[rip] != nil || debug.softwareBreakpoints[rip &- 1] != nil else { return nil }
        return error(
            .invalidRequest(
                "this host's KVM cannot deliver the int3 of the software breakpoint at \(hex(rip)) to the VMM (internal error instead); use setBreakpoint(at:), a hardware breakpoint"
            ))
    }
}

extension TestVM {
    /// Whether this host's KVM delivers `int3` software breakpoints to the VMM
    /// in real and long mode (hardware VT-x/AMD-V does; the PVM back end does
    /// not). Found out once per process by running two tiny guests.
    public static let softwareBreakpointsWork: Bool = {
        // nop; int3-patched nop; mov $0,%al; out %al,$0xf4 — in each mode.
        let code: [UInt8] = [0x90, 0x90, 0xb0, 0x00, 0xe6, 0xf4, 0xf4]
        for mode in [CPUMode.real, .long] {
            guard let vm = try? TestVM(code: code, mode: mode), (try? vm.setSoftwareBreakpoint(at: vm.machine.image.entry + 1)) != nil,
                let exit = try? vm.nextExit(timeout: .seconds(2)), case .debug(let info) = exit, info.exception == 3
            else { return false }
        }
        return true
    }()
}
