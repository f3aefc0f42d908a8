internal import CKVM

#if canImport(Glibc)
    import Glibc
#endif

// Saving and restoring what KVM holds for a VM outside its vCPUs: the
// in-kernel interrupt controllers, the PIT and kvmclock.

extension KVMVirtualMachine {
    /// The in-kernel PICs and IOAPIC, or nil for a VM without an irqchip (KVM
    /// answers `ENXIO`). The corresponding ioctl is `KVM_GET_IRQCHIP`.
    public func irqChipState() throws(KVMError) -> IRQChipState? {
        var master = kvm_irqchip()
        master.chip_id = UInt32(KVM_IRQCHIP_PIC_MASTER)
        let result = ckvm_get_irqchip(fd, &master)
        if result == -ENXIO { return nil }
        _ = try check(result, .getIRQChip(chip: master.chip_id))
        var slave = kvm_irqchip()
        slave.chip_id = UInt32(KVM_IRQCHIP_PIC_SLAVE)
        _ = try check(ckvm_get_irqchip(fd, &slave), .getIRQChip(chip: slave.chip_id))
        var ioapic = kvm_irqchip()
        ioapic.chip_id = UInt32(KVM_IRQCHIP_IOAPIC)
        _ = try check(ckvm_get_irqchip(fd, &ioapic), .getIRQChip(chip: ioapic.chip_id))
        return IRQChipState(
            masterPIC: PICState(master.chip.pic), slavePIC: PICState(slave.chip.pic), ioapic: IOAPICState(ioapic.chip.ioapic))
    }

    /// Loads all three in-kernel interrupt controllers. The IOAPIC is checked
    /// before any is loaded. The corresponding ioctl is `KVM_SET_IRQCHIP`.
    public func setIRQChipState(_ state: IRQChipState) throws(KVMError) {
        var chips = [kvm_irqchip(), kvm_irqchip(), kvm_irqchip()]
        chips[0].chip_id = UInt32(KVM_IRQCHIP_PIC_MASTER)
        chips[0].chip.pic = state.masterPIC.kvm
        chips[1].chip_id = UInt32(KVM_IRQCHIP_PIC_SLAVE)
        chips[1].chip.pic = state.slavePIC.kvm
        chips[2].chip_id = UInt32(KVM_IRQCHIP_IOAPIC)
        chips[2].chip.ioapic = try state.ioapic.kvm()
        for i in chips.indices {
            _ = try check(ckvm_set_irqchip(fd, &chips[i]), .setIRQChip(chip: chips[i].chip_id))
        }
    }

    /// The in-kernel PIT, or nil for a VM without one (KVM answers `ENXIO`).
    /// The corresponding ioctl is `KVM_GET_PIT2`.
    public func pitState() throws(KVMError) -> PITState? {
        var state = kvm_pit_state2()
        let result = ckvm_get_pit2(fd, &state)
        if result == -ENXIO { return nil }
        _ = try check(result, .getPIT)
        return PITState(state)
    }

    /// Loads the PIT; each channel restarts counting from its `count`.
    /// The corresponding ioctl is `KVM_SET_PIT2`.
    public func setPITState(_ state: PITState) throws(KVMError) {
        var raw = try state.kvm()
        _ = try check(ckvm_set_pit2(fd, &raw), .setPIT)
    }

    /// The kvmclock value. The corresponding ioctl is `KVM_GET_CLOCK`.
    public func clock() throws(KVMError) -> ClockState {
        var data = kvm_clock_data()
        _ = try check(ckvm_get_clock(fd, &data), .getClock)
        return ClockState(clock: data.clock, flags: data.flags, realtime: data.realtime, hostTSC: data.host_tsc)
    }

    /// Sets the kvmclock. With `advancedByElapsedRealTime` (and a state that
    /// recorded `realtime`), KVM adds the wall-clock time that passed since the
    /// state was read, which is what a migrated guest wants; without it guest
    /// time resumes where it stopped, as after a pause. The corresponding ioctl is `KVM_SET_CLOCK`.
    public func setClock(_ state: ClockState, advancedByElapsedRealTime: Bool = false) throws(KVMError) {
        var data = kvm_clock_data()
        data.clock = state.clock
        let realtimeFlag = UInt32(KVM_CLOCK_REALTIME)
        if advancedByElapsedRealTime && state.flags & realtimeFlag != 0 {
            data.flags = realtimeFlag
            data.realtime = state.realtime
        }
        _ = try check(ckvm_set_clock(fd, &data), .setClock)
    }

    /// Everything KVM holds for the VM outside vCPUs and memory: irqchip and
    /// PIT (each nil if the VM has none) and kvmclock. Call it with every vCPU
    /// stopped. The corresponding ioctls are `KVM_GET_IRQCHIP`, `KVM_GET_PIT2` and `KVM_GET_CLOCK`.
    public func saveState() throws(KVMError) -> VMState {
        VMState(irqchip: try irqChipState(), pit: try pitState(), clock: try clock())
    }

    /// Loads `state` into a VM built the same way (same irqchip and PIT, which
    /// must already exist; a part that is nil in `state` is left alone):
    /// `restoreInterruptControllers(from:)`, then `restoreTimers(from:)`. A
    /// machine with vCPUs restores them in between (see there).
    /// The corresponding ioctls are `KVM_SET_IRQCHIP`, `KVM_SET_PIT2` and `KVM_SET_CLOCK`.
    public func restoreState(_ state: VMState, advancingClockByElapsedRealTime: Bool = false) throws(KVMError) {
        try restoreInterruptControllers(from: state)
        try restoreTimers(from: state, advancingClockByElapsedRealTime: advancingClockByElapsedRealTime)
    }

    /// The first step of a restore: the PICs and the IOAPIC, before the vCPUs,
    /// whose LAPICs deliver into them. The corresponding ioctl is `KVM_SET_IRQCHIP`.
    public func restoreInterruptControllers(from state: VMState) throws(KVMError) {
        guard let irqchip = state.irqchip else { return }
        _ = try irqchip.ioapic.kvm()  // check before loading anything
        try setIRQChipState(irqchip)
    }

    /// The last step of a restore, after the vCPUs: the PIT and kvmclock.
    ///
    /// Loading the PIT starts its timer. A tick that fired before the LAPICs
    /// were restored would be delivered to a LAPIC whose state is then
    /// overwritten, and lost; with KVM's PIT in reinject mode (its default),
    /// a tick that is never acknowledged stops every later one, so the guest
    /// would wait for its timer for ever. The corresponding ioctls are `KVM_SET_PIT2` and `KVM_SET_CLOCK`.
    public func restoreTimers(from state: VMState, advancingClockByElapsedRealTime: Bool = false) throws(KVMError) {
        if let pit = state.pit { try setPITState(pit) }
        try setClock(state.clock, advancedByElapsedRealTime: advancingClockByElapsedRealTime)
    }
}
