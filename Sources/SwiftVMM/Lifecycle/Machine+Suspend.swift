import ACPI
import Devices
import GuestMemory
import KVM
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// S3, suspend to RAM: the guest writes SLP_EN with `\_S3_`'s SLP_TYP (to the
/// PM1a control block or the hardware-reduced sleep control register), its
/// vCPUs stop with RAM and devices kept, and a wake event (the RTC alarm it
/// set, a key at the console, `MachineRemote.requestWake()`) resumes it the
/// way firmware does: the bootstrap processor reset into real mode at the
/// FACS's waking vector, WAK_STS set.
extension Machine {
    /// How often a suspended machine looks for a wake event, a stop request
    /// or its deadline: a suspended guest costs no CPU, and 10 ms is far
    /// below what a user or the RTC's one-second alarm resolution notices.
    static let suspendPollInterval: Int64 = 10_000_000

    /// What woke a suspended guest.
    public enum WakeEvent: Hashable, Sendable {
        /// The RTC alarm the guest set (status B's AIE).
        case rtcAlarm
        /// Input arrived at the console.
        case console
        /// `MachineRemote.requestWake()` or a direct `wake(by:)`.
        case request
    }

    /// Sleeps until a wake event and wakes the guest; returns the stop
    /// instead when the machine is asked to stop or its deadline passes first.
    func sleepUntilWakeEvent() throws(MachineError) -> StopReason? {
        guard let pc = devices.pc else { return .suspended }
        lifecycle.wakeRequested.store(false, ordering: .releasing)
        // The alarm's second, on the host's real-time clock, if the guest set one.
        let now = HostRealTime.now()
        var alarmDelay: Int?
        withBuses { alarmDelay = pc.rtc.secondsUntilAlarm(after: RTCDateTime(secondsSince1970: now.seconds)) }
        let alarmAt = alarmDelay.map { now.seconds + Int64($0) }
        logger.debug("guest suspended to RAM\(alarmAt.map { ", RTC alarm in \($0 - now.seconds) s" } ?? "")")
        while true {
            // A pause (the console's Ctrl-A p, a snapshot) parks here, as a running vCPU would at its next kick.
            lifecycle.parkIfRequested()
            if deadlineHasExpired { return .deadlineExpired }
            if let stop = lifecycle.takeStop() { return try stop.outcome.get() }
            if let alarmAt, HostRealTime.now().seconds >= alarmAt {
                try wake(by: .rtcAlarm)
                return nil
            }
            // A key waiting at the console, or one already moved into the
            // UART before the guest slept (the run loop drains the console
            // into it whenever the bootstrap processor comes out of KVM).
            var keyInUART = false
            withBuses { keyInUART = serial.hasPendingInput }
            if serialInput?.hasPendingInput == true || keyInUART {
                try wake(by: .console)
                return nil
            }
            if lifecycle.wakeRequested.exchange(false, ordering: .acquiringAndReleasing) {
                try wake(by: .request)
                return nil
            }
            var interval = timespec(tv_sec: 0, tv_nsec: Int(Self.suspendPollInterval))
            _ = nanosleep(&interval, nil)
        }
    }

    /// Resumes a guest that suspended itself to RAM (after `dispatch(_:)`
    /// returned `.suspended`): WAK_STS (and, for the alarm, RTC_STS and the
    /// RTC's AF) set, and the bootstrap processor reset to real mode at the
    /// FACS's waking vector, CS = vector >> 4, IP = vector & 0xf, with RAM
    /// and every other register of the platform kept. Application
    /// processors are left as the guest left them (an OS parks them before
    /// suspending and starts them again with INIT and SIPI).
    public func wake(by event: WakeEvent = .request) throws(MachineError) {
        guard let pc = devices.pc, let facs = acpiTables?[signature: "FACS"] else {
            // Only a PC has a FACS (and one restored from an older snapshot may not).
            throw .wrongPlatform(operation: "waking from S3 (no FACS in the ACPI tables)", needs: .pc)
        }
        let vector: UInt32
        let extendedVector: UInt64
        do {
            vector = try memory.readInteger(
                at: GuestAddress(facs.address.rawValue + UInt64(ACPITableBuilder.facsWakingVectorOffset)), as: UInt32.self)
            extendedVector = try memory.readInteger(
                at: GuestAddress(facs.address.rawValue + UInt64(ACPITableBuilder.facsExtendedWakingVectorOffset)), as: UInt64.self)
        } catch { throw .memory(error) }
        if extendedVector != 0 {
            // The FACS offers no 64BIT_WAKE_SUPPORTED_F, so the OS must not rely on it.
            logger.warning("the guest set X_FIRMWARE_WAKING_VECTOR \(hex(extendedVector)); waking at the real-mode vector instead")
        }
        withBuses {
            pc.acpiPM1.wake(byAlarm: event == .rtcAlarm)
            pc.acpiSleep.wake()
            if event == .rtcAlarm { pc.rtc.alarmFired() }
        }
        let vcpu = bootstrap
        do {
            // The SLP_EN write is an OUT KVM finishes on the next KVM_RUN;
            // finish it now so it does not move the new RIP.
            _ = try vcpu.vcpu.completePendingIO()
            var special = try vcpu.vcpu.specialRegisters()
            let segment = UInt16(truncatingIfNeeded: vector >> 4)
            special.cs = Segment(base: UInt64(segment) << 4, limit: 0xffff, selector: segment, type: 0xb)
            for keyPath in [\SpecialRegisters.ds, \.es, \.fs, \.gs, \.ss] {
                special[keyPath: keyPath] = Segment(base: 0, limit: 0xffff, selector: 0, type: 0x3)
            }
            special.tr = Segment(type: 0xb, s: false)
            special.ldt = Segment(type: 0x2, s: false)
            special.gdt = DescriptorTable()
            special.idt = DescriptorTable()
            // CR0, CR2, CR3, CR4 and EFER as after a reset; APIC base and CR8 kept.
            let reset = SpecialRegisters()
            (special.cr0, special.cr2, special.cr3, special.cr4, special.efer) = (reset.cr0, 0, 0, 0, 0)
            var registers = Registers()
            registers.rip = UInt64(vector & 0xf)
            try vcpu.vcpu.setSpecialRegisters(special)
            try vcpu.vcpu.setRegisters(registers)
            try vcpu.vcpu.setFPU(FPUState())
            try vcpu.vcpu.setMPState(.runnable)
        } catch { throw .kvm(error) }
        logger.debug("guest woken from S3 by \(event) at \(hex(vector))")
    }
}
