import GuestMemory
import KVM
import VMCore

/// Debugging any vCPU: its registers, guest memory as it sees it
/// (guest-virtual addresses), guest-debug settings, and a single step.
///
/// The bootstrap processor (vCPU 0) may be used whenever its caller is not
/// running it; every other vCPU only while the machine is quiescent
/// (`pause()`d, or not running), since a running one belongs to its thread.
extension Machine {
    func runner(_ vcpu: Int, for operation: String) throws(MachineError) -> VCPURunner {
        guard runners.indices.contains(vcpu) else { throw .noSuchVCPU(vcpu, count: runners.count) }
        if vcpu != 0, runners[vcpu].started, !lifecycle.isQuiescent { throw .notQuiescent(operation: operation) }
        return runners[vcpu]
    }

    public func registers(vcpu: Int) throws(MachineError) -> Registers {
        let runner = try runner(vcpu, for: "read registers")
        do { return try runner.vcpu.registers() } catch { throw .kvm(error) }
    }

    public func setRegisters(_ registers: Registers, vcpu: Int) throws(MachineError) {
        let runner = try runner(vcpu, for: "write registers")
        do { try runner.vcpu.setRegisters(registers) } catch { throw .kvm(error) }
    }

    public func specialRegisters(vcpu: Int) throws(MachineError) -> SpecialRegisters {
        let runner = try runner(vcpu, for: "read registers")
        do { return try runner.vcpu.specialRegisters() } catch { throw .kvm(error) }
    }

    public func setSpecialRegisters(_ registers: SpecialRegisters, vcpu: Int) throws(MachineError) {
        let runner = try runner(vcpu, for: "write registers")
        do { try runner.vcpu.setSpecialRegisters(registers) } catch { throw .kvm(error) }
    }

    /// The x87/SSE state (`KVM_GET_FPU`); throws where the host does not allow it.
    public func floatingPointRegisters(vcpu: Int) throws(MachineError) -> FPUState {
        let runner = try runner(vcpu, for: "read registers")
        do { return try runner.vcpu.fpu() } catch { throw .kvm(error) }
    }

    public func setFloatingPointRegisters(_ state: FPUState, vcpu: Int) throws(MachineError) {
        let runner = try runner(vcpu, for: "write registers")
        do { try runner.vcpu.setFPU(state) } catch { throw .kvm(error) }
    }

    /// Sets how the VMM debugs `vcpu`: single-stepping and the four hardware
    /// slots (instruction breakpoints or data watchpoints); hits come back as
    /// `.debug` exits whose `firedSlots` say which slot fired.
    public func setGuestDebug(_ configuration: GuestDebugConfiguration, vcpu: Int = 0) throws(MachineError) {
        let runner = try runner(vcpu, for: "set guest debugging")
        do { try runner.vcpu.setGuestDebug(configuration) } catch { throw .kvm(error) }
    }

    /// The guest-physical address of guest-virtual `address` as `vcpu` sees
    /// it now: through its page tables where paging is on, the linear address
    /// itself where it is off (real mode, or protected mode without paging).
    public func translate(_ address: UInt64, vcpu: Int = 0) throws(MachineError) -> UInt64 {
        let runner = try runner(vcpu, for: "translate addresses")
        let physical: UInt64?
        do { physical = try runner.vcpu.translate(address) } catch {
            // A host whose KVM cannot translate: identity where paging is off, the only case it could not matter.
            let paging: Bool
            do { paging = try runner.vcpu.specialRegisters().cr0 & (1 << 31) != 0 } catch { throw .kvm(error) }
            guard !paging else { throw .kvm(error) }
            physical = address
        }
        guard let physical else { throw .unmappedVirtualAddress(address, vcpu: vcpu) }
        return physical
    }

    /// Reads `count` bytes of guest-virtual memory as `vcpu` sees it, page by page.
    public func readVirtualMemory(at address: UInt64, count: Int, vcpu: Int = 0) throws(MachineError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        try forEachPage(address, count, vcpu: vcpu) { (physical, length, _) throws(MachineError) in
            do throws(GuestMemoryError) { bytes += try memory.read(count: length, at: GuestAddress(physical)) } catch {
                throw .memory(error)
            }
        }
        return bytes
    }

    /// Writes guest-virtual memory as `vcpu` sees it, page by page; every page is translated before any is written.
    public func writeVirtualMemory(_ bytes: [UInt8], at address: UInt64, vcpu: Int = 0) throws(MachineError) {
        var pieces: [(UInt64, Int, Int)] = []
        try forEachPage(address, bytes.count, vcpu: vcpu) { (physical, length, offset) throws(MachineError) in
            guard memory.contains(GuestAddress(physical), length: UInt64(length)) else {
                throw .memory(.outOfBounds(address: GuestAddress(physical), length: UInt64(length)))
            }
            pieces.append((physical, length, offset))
        }
        for (physical, length, offset) in pieces {
            do throws(GuestMemoryError) { try memory.write(bytes[offset..<offset + length], at: GuestAddress(physical)) } catch {
                throw .memory(error)
            }
        }
    }

    private func forEachPage(
        _ address: UInt64, _ count: Int, vcpu: Int, _ body: (UInt64, Int, Int) throws(MachineError) -> Void
    ) throws(MachineError) {
        var offset = 0
        while offset < count {
            let virtual = address &+ UInt64(offset)
            let length = min(count - offset, Int(GuestMemory.pageSize - virtual % GuestMemory.pageSize))
            try body(try translate(virtual, vcpu: vcpu), length, offset)
            offset += length
        }
    }

    /// Runs the bootstrap processor for exactly one instruction and returns
    /// the exits it caused on the way, handled as `run()` would (a port
    /// access, say). A pending port or MMIO access is completed first, and an
    /// access the instruction makes is completed before returning, so the
    /// step is one instruction on every host. Returns the stop reason if the
    /// instruction ended the machine.
    public func stepInstruction() throws(MachineError) -> StopReason? {
        let vcpu = bootstrap
        do { _ = try vcpu.vcpu.completePendingIO() } catch { throw .kvm(error) }
        try setGuestDebug(GuestDebugConfiguration(singleStep: true, slots: debugControl.slots))
        defer { try? setGuestDebug(GuestDebugConfiguration(slots: debugControl.slots)) }
        while true {
            let exit = try nextExit()
            switch exit {
            case .debug: return nil
            case .interrupted: continue
            default:
                if let reason = try dispatch(exit) { return reason }
                if case .ioIn = exit {
                } else if case .ioOut = exit {
                } else if case .mmioRead = exit {
                } else if case .mmioWrite = exit {
                } else {
                    continue
                }
                do { _ = try vcpu.vcpu.completePendingIO() } catch { throw .kvm(error) }
                return nil
            }
        }
    }
}
