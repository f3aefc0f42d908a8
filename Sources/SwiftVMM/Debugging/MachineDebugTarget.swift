import GDBStub
import KVM
import VMCore

/// A `Machine` as the GDB stub sees it: each vCPU a thread, stopped and
/// resumed all together (all-stop), with the four debug-register slots
/// programmed on every vCPU and `Z0` breakpoints beyond them planted as
/// `int3`, which the machine recognises when KVM cannot run it.
///
/// The machine runs as usual (`run()` on its thread); the stub's thread calls
/// this target. While the debugger looks at a stop, the machine is paused
/// (every vCPU parked, its I/O completed), which is when another thread may
/// use a vCPU (see `Machine`).
public final class MachineDebugTarget: DebugTarget, @unchecked Sendable {
    // Unchecked: the machine's vCPUs are only touched by the stub's thread
    // while the machine is quiescent; `settled` belongs to the stub's thread.
    let machine: Machine
    private var settled = false

    public init(machine: Machine) {
        self.machine = machine
    }

    public var vcpuCount: Int { machine.vcpuCount }

    private var control: DebugControl { machine.debugControl }

    public func attach(onStop: @escaping @Sendable (DebugStop) -> Void) -> DebugStop {
        control.attach(onStop: onStop)
        // Started with --gdb-wait (paused before the first instruction), or running: pause it either way.
        machine.pause()
        settled = true
        return DebugStop(vcpu: 0, reason: .step)
    }

    /// Waits, once per stop, until every vCPU is parked (the one that
    /// stopped parks by itself; the others are kicked).
    private func settle() {
        guard !settled else { return }
        machine.remote.quiesce(except: control.stoppedVCPU)
        settled = true
    }

    public func registers(vcpu: Int) throws(DebugTargetError) -> X86RegisterFile {
        settle()
        do {
            let general = try machine.registers(vcpu: vcpu)
            let special = try machine.specialRegisters(vcpu: vcpu)
            let fpu = try? machine.floatingPointRegisters(vcpu: vcpu)
            return X86RegisterFile(general: general, special: special, fpu: fpu)
        } catch { throw .unavailable(error.description) }
    }

    public func setRegisters(_ registers: X86RegisterFile, vcpu: Int) throws(DebugTargetError) {
        settle()
        do {
            var general = try machine.registers(vcpu: vcpu)
            var special = try machine.specialRegisters(vcpu: vcpu)
            let oldSpecial = special
            let oldFPU = try? machine.floatingPointRegisters(vcpu: vcpu)
            var fpu = oldFPU
            registers.apply(to: &general, &special, &fpu)
            try machine.setRegisters(general, vcpu: vcpu)
            if special != oldSpecial { try machine.setSpecialRegisters(special, vcpu: vcpu) }
            if let fpu, fpu != oldFPU { try machine.setFloatingPointRegisters(fpu, vcpu: vcpu) }
        } catch { throw .unavailable(error.description) }
    }

    public func readMemory(at address: UInt64, count: Int, vcpu: Int) throws(DebugTargetError) -> [UInt8] {
        settle()
        var bytes: [UInt8]
        do { bytes = try machine.readVirtualMemory(at: address, count: count, vcpu: vcpu) } catch { throw .unmappedAddress(address) }
        // The debugger sees the guest's own bytes where int3 is planted.
        for (planted, original) in control.plantedBytes where planted >= address && planted - address < UInt64(count) {
            bytes[Int(planted - address)] = original
        }
        return bytes
    }

    public func writeMemory(_ bytes: [UInt8], at address: UInt64, vcpu: Int) throws(DebugTargetError) {
        settle()
        var bytes = bytes
        // A write over a planted int3 changes the byte it restores; the int3 stays.
        for (planted, _) in control.plantedBytes where planted >= address && planted - address < UInt64(bytes.count) {
            let index = Int(planted - address)
            control.plant(planted, original: bytes[index])
            bytes[index] = 0xcc
        }
        do { try machine.writeVirtualMemory(bytes, at: address, vcpu: vcpu) } catch { throw .unmappedAddress(address) }
    }

    public func setHardwareSlots(_ slots: [HardwareBreakpoint?]) throws(DebugTargetError) {
        control.slots = slots
    }

    public func insertSoftwareBreakpoint(at address: UInt64, vcpu: Int) throws(DebugTargetError) {
        settle()
        guard !control.isPlanted(address) else { return }
        do {
            let original = try machine.readVirtualMemory(at: address, count: 1, vcpu: vcpu)[0]
            try machine.writeVirtualMemory([0xcc], at: address, vcpu: vcpu)
            control.plant(address, original: original)
        } catch { throw .unmappedAddress(address) }
    }

    public func removeSoftwareBreakpoint(at address: UInt64, vcpu: Int) throws(DebugTargetError) {
        settle()
        guard let original = control.unplant(address) else { return }
        do { try machine.writeVirtualMemory([original], at: address, vcpu: vcpu) } catch { throw .unmappedAddress(address) }
    }

    public func resume(_ actions: [GDBResumeAction?]) {
        settle()
        let stepping = Set(actions.enumerated().filter { $0.element == .step }.map { UInt32($0.offset) })
        let slots = control.slots
        let watching = control.snapshotWatches { [machine] address, length in
            try? machine.readVirtualMemory(at: address, count: length, vcpu: 0)
        }
        for vcpu in 0..<machine.vcpuCount {
            // With a data watchpoint every vCPU steps, so that writes the host does not report are still caught.
            let configuration = GuestDebugConfiguration(singleStep: watching || stepping.contains(UInt32(vcpu)), slots: slots)
            try? machine.setGuestDebug(configuration, vcpu: vcpu)
        }
        control.resuming(stepping: stepping)
        settled = false
        machine.resume()
    }

    public func interrupt() {
        // Pause first (every vCPU parked), then report, unless a stop of the guest's own came first.
        _ = machine.lifecycle.requestPause()
        machine.remote.quiesce()
        _ = control.reportFromOutside(DebugStop(vcpu: 0, reason: .interrupted))
        settled = true
    }

    /// Tells a debugger waiting for a stop that the machine ended with
    /// `reason` (`nil`: with an error).
    public func machineEnded(_ reason: StopReason?) {
        let stop: DebugStop.Reason
        switch reason {
        case .debugExit(let status)?: stop = .exited(status: UInt8(truncatingIfNeeded: status))
        case .powerOff?, .halted(interruptsEnabled: false)?, .stopRequested?: stop = .exited(status: 0)
        default: stop = .terminated
        }
        _ = control.reportFromOutside(DebugStop(vcpu: 0, reason: stop))
        control.detach()
    }

    public func detach() {
        settle()
        for vcpu in 0..<machine.vcpuCount { try? machine.setGuestDebug(GuestDebugConfiguration(), vcpu: vcpu) }
        control.slots = []
        control.detach()
        machine.resume()
    }

    public func kill() {
        control.detach()
        machine.requestStop()
        machine.resume()
    }
}
