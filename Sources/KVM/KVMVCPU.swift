internal import CKVM
import SystemPackage
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// A virtual CPU: its file descriptor and its `kvm_run` page. Releases both when it ends.
public struct KVMVCPU: ~Copyable, VirtualCPU {
    let fd: Int32
    let page: RunPage
    /// Bytes in this host's XSAVE area (`KVM_CAP_XSAVE2`, or 4096 with only
    /// `KVM_CAP_XSAVE`); 0 where KVM has no XSAVE and state goes through `kvm_fpu`.
    let xsaveSize: Int
    /// Whether `KVM_GET_XSAVE2` exists (`KVM_GET_XSAVE` truncates at 4096 bytes).
    let usesXSAVE2: Bool
    /// Whether `KVM_GET_XCRS` exists (it needs XSAVE on the host).
    let hasXCRs: Bool

    init(fd: Int32, runPageSize: Int, xsaveSize: Int = 0, usesXSAVE2: Bool = false, hasXCRs: Bool = false) throws(KVMError) {
        self.xsaveSize = xsaveSize
        self.usesXSAVE2 = usesXSAVE2
        self.hasXCRs = hasXCRs
        // The fd is ours from the moment the ioctl returned it: close it if the
        // mapping fails, because `self` (whose deinit would) does not exist yet.
        do throws(KVMError) {
            page = try RunPage(vcpuFD: fd, size: runPageSize)
        } catch {
            close(fd)
            throw error
        }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Runs the guest until its next exit and returns that exit, copied out of `kvm_run`.
    ///
    /// `EINTR` (a signal or `immediate_exit`, which is how the VMM stops a vCPU)
    /// is reported as `.interrupted`, never retried: the caller decides whether
    /// to run again. `EAGAIN` is retried, as KVM asks. One ioctl per call and no
    /// allocation for single-access exits. The corresponding ioctl is `KVM_RUN`.
    public mutating func run() throws(KVMError) -> VMExit {
        while true {
            let result = ckvm_run(fd)
            if result >= 0 { return page.decodeExit() }
            if result == -EINTR {
                page.setImmediateExit(false)
                return .interrupted
            }
            if result == -EAGAIN { continue }
            throw .failed(.run, Errno(rawValue: -result))
        }
    }

    /// Supplies the data for the pending `ioIn` or `mmioRead` exit; KVM delivers
    /// it to the guest on the next ``run()``.
    public mutating func completeRead(_ data: IOData) {
        page.completeRead(data)
    }

    /// A handle another thread can use to make this vCPU leave `KVM_RUN`.
    public var kicker: VCPUKicker { VCPUKicker(runPageAddress: page.address) }

    /// Withdraws a `VCPUKicker.requestExit()` that the vCPU has not acted on yet.
    public func clearExitRequest() { page.setImmediateExit(false) }

    /// The general-purpose registers. The corresponding ioctl is `KVM_GET_REGS`.
    public func registers() throws(KVMError) -> Registers {
        var regs = kvm_regs()
        _ = try check(ckvm_get_regs(fd, &regs), .getRegisters)
        return Registers(regs)
    }

    /// The corresponding ioctl is `KVM_SET_REGS`.
    public func setRegisters(_ registers: Registers) throws(KVMError) {
        var regs = kvm_regs(registers)
        _ = try check(ckvm_set_regs(fd, &regs), .setRegisters)
    }

    /// Segment, control and descriptor-table registers. The corresponding ioctl is `KVM_GET_SREGS`.
    public func specialRegisters() throws(KVMError) -> SpecialRegisters {
        var sregs = kvm_sregs()
        _ = try check(ckvm_get_sregs(fd, &sregs), .getSpecialRegisters)
        return SpecialRegisters(sregs)
    }

    /// The corresponding ioctl is `KVM_SET_SREGS`. Registers KVM keeps but
    /// `SpecialRegisters` does not model (the pending-interrupt bitmap) are preserved.
    public func setSpecialRegisters(_ registers: SpecialRegisters) throws(KVMError) {
        var sregs = kvm_sregs()
        _ = try check(ckvm_get_sregs(fd, &sregs), .getSpecialRegisters)
        registers.store(into: &sregs)
        _ = try check(ckvm_set_sregs(fd, &sregs), .setSpecialRegisters)
    }

    /// The x87/SSE state. The corresponding ioctl is `KVM_GET_FPU`.
    public func fpu() throws(KVMError) -> FPUState {
        var fpu = kvm_fpu()
        _ = try check(ckvm_get_fpu(fd, &fpu), .getFPU)
        return FPUState(fpu)
    }

    /// Where the host has XSAVE, KVM writes only the legacy area and leaves
    /// the XSAVE header saying SSE is unused, so `xsave()` (and with it a
    /// snapshot) reports XMM registers set here as zero; state that must
    /// survive goes in with `setXSAVE(_:)`. The corresponding ioctl is `KVM_SET_FPU`.
    public func setFPU(_ state: FPUState) throws(KVMError) {
        var fpu = kvm_fpu(state)
        _ = try check(ckvm_set_fpu(fd, &fpu), .setFPU)
    }

    /// Reads the given MSRs. The corresponding ioctl is `KVM_GET_MSRS`.
    public func msrs(_ indices: [UInt32]) throws(KVMError) -> [UInt32: UInt64] {
        try withMSRBuffer(indices.map { ($0, 0) }) { (header, entries) throws(KVMError) -> [UInt32: UInt64] in
            let read = Int(try check(ckvm_get_msrs(fd, header), .getMSRs))
            if read < indices.count { throw .msrsRejected(index: indices[read], operation: .getMSRs) }
            var values: [UInt32: UInt64] = [:]
            for i in 0..<read { values[entries[i].index] = entries[i].data }
            return values
        }
    }

    /// Writes the given MSRs. The corresponding ioctl is `KVM_SET_MSRS`.
    public func setMSRs(_ msrs: [(index: UInt32, value: UInt64)]) throws(KVMError) {
        try withMSRBuffer(msrs) { (header, _) throws(KVMError) in
            let written = Int(try check(ckvm_set_msrs(fd, header), .setMSRs))
            if written < msrs.count { throw .msrsRejected(index: msrs[written].index, operation: .setMSRs) }
        }
    }

    /// Sets the CPUID leaves the guest sees. The corresponding ioctl is `KVM_SET_CPUID2`.
    public func setCPUID(_ entries: [CPUIDEntry]) throws(KVMError) {
        try withCPUIDBuffer(entries: entries) { (buffer) throws(KVMError) in
            _ = try check(ckvm_set_cpuid2(fd, buffer), .setCPUID)
        }
    }

    /// The local APIC's 1 KiB register page. The corresponding ioctl is `KVM_GET_LAPIC`.
    public func lapicRegisters() throws(KVMError) -> [UInt8] {
        var state = kvm_lapic_state()
        _ = try check(ckvm_get_lapic(fd, &state), .getLAPIC)
        return withUnsafeBytes(of: state.regs) { Array($0) }
    }

    /// The size of the local APIC's register page.
    public static let lapicPageSize = MemoryLayout<kvm_lapic_state>.size

    /// Replaces the local APIC's register page. A page of any other size than
    /// `lapicPageSize` is refused: a short one would leave stale registers behind.
    /// The corresponding ioctl is `KVM_SET_LAPIC`.
    public func setLAPICRegisters(_ registers: [UInt8]) throws(KVMError) {
        var state = try Self.lapicState(registers)
        _ = try check(ckvm_set_lapic(fd, &state), .setLAPIC)
    }

    static func lapicState(_ registers: [UInt8]) throws(KVMError) -> kvm_lapic_state {
        var state = kvm_lapic_state()
        guard registers.count == lapicPageSize else {
            throw .stateSizeMismatch(field: "LAPIC register page", expected: lapicPageSize, actual: registers.count, operation: .setLAPIC)
        }
        withUnsafeMutableBytes(of: &state.regs) { raw in raw.copyBytes(from: registers) }
        return state
    }

    /// The vCPU's multiprocessing state. A value KVM defines for other
    /// architectures only is still decoded; one no header defines throws.
    /// The corresponding ioctl is `KVM_GET_MP_STATE`.
    public func mpState() throws(KVMError) -> MPState {
        var state = kvm_mp_state()
        _ = try check(ckvm_get_mp_state(fd, &state), .getMPState)
        guard let value = MPState(rawValue: state.mp_state) else {
            throw .unknownStateValue(field: "MP state", value: UInt64(state.mp_state), operation: .getMPState)
        }
        return value
    }

    /// The corresponding ioctl is `KVM_SET_MP_STATE`.
    public func setMPState(_ value: MPState) throws(KVMError) {
        var state = kvm_mp_state(mp_state: value.rawValue)
        _ = try check(ckvm_set_mp_state(fd, &state), .setMPState)
    }

    /// Makes the guest take exception `vector` (with `errorCode` pushed when
    /// given, as #GP and #PF need) when it next runs, as if its current
    /// instruction had raised it. The corresponding ioctls are
    /// `KVM_GET_VCPU_EVENTS` and `KVM_SET_VCPU_EVENTS`.
    public func injectException(vector: UInt8, errorCode: UInt32? = nil) throws(KVMError) {
        var events = kvm_vcpu_events()
        _ = try check(ckvm_get_vcpu_events(fd, &events), .getVCPUEvents)
        events.exception.injected = 1
        events.exception.nr = vector
        events.exception.has_error_code = errorCode == nil ? 0 : 1
        events.exception.pending = 0
        events.exception.error_code = errorCode ?? 0
        events.flags = 0  // leave NMI, SIPI, SMM and interrupt-shadow state as KVM has it
        _ = try check(ckvm_set_vcpu_events(fd, &events), .setVCPUEvents)
    }

    /// Enables or disables guest debugging: single-stepping, software breakpoints
    /// (`int3` exits to the VMM instead of the guest) and up to four hardware
    /// breakpoints on instruction addresses. The corresponding ioctl is `KVM_SET_GUEST_DEBUG`.
    public func setGuestDebug(singleStep: Bool, softwareBreakpoints: Bool, hardwareBreakpoints: [UInt64]) throws(KVMError) {
        try setGuestDebug(
            GuestDebugConfiguration(
                singleStep: singleStep, softwareBreakpoints: softwareBreakpoints,
                slots: hardwareBreakpoints.prefix(GuestDebugConfiguration.slotCount).map { HardwareBreakpoint(address: $0) }))
    }

    /// Sets how the VMM debugs this vCPU: single-stepping, `int3` exits, and
    /// the four hardware slots, each an instruction breakpoint or a data
    /// watchpoint (DR7's R/W and LEN bits). The corresponding ioctl is `KVM_SET_GUEST_DEBUG`.
    public func setGuestDebug(_ configuration: GuestDebugConfiguration) throws(KVMError) {
        var debug = kvm_guest_debug()
        var control: UInt32 = configuration.isEnabled ? UInt32(KVM_GUESTDBG_ENABLE) : 0
        if configuration.singleStep { control |= UInt32(KVM_GUESTDBG_SINGLESTEP) }
        if configuration.softwareBreakpoints { control |= UInt32(KVM_GUESTDBG_USE_SW_BP) }
        let slots = configuration.slots.prefix(GuestDebugConfiguration.slotCount)
        if slots.contains(where: { $0 != nil }) { control |= UInt32(KVM_GUESTDBG_USE_HW_BP) }
        debug.control = control
        withUnsafeMutableBytes(of: &debug.arch.debugreg) { raw in
            let regs = raw.bindMemory(to: UInt64.self)
            for (i, slot) in slots.enumerated() { regs[i] = slot?.address ?? 0 }
            regs[7] = configuration.dr7
        }
        _ = try check(ckvm_set_guest_debug(fd, &debug), .setGuestDebug)
    }

    /// The guest-physical address the guest-virtual `address` maps to through
    /// this vCPU's current paging mode (itself where paging is off), or `nil`
    /// where nothing is mapped. The corresponding ioctl is `KVM_TRANSLATE`.
    public func translate(_ address: UInt64) throws(KVMError) -> UInt64? {
        var translation = kvm_translation()
        translation.linear_address = address
        _ = try check(ckvm_translate(fd, &translation), .translate)
        return translation.valid != 0 ? translation.physical_address : nil
    }
}

/// Makes a vCPU leave `KVM_RUN` from another thread.
///
/// Setting `kvm_run.immediate_exit` stops the vCPU at its next entry; the
/// caller also sends the vCPU's thread a signal so that a vCPU already inside
/// `KVM_RUN` exits with `EINTR`. Valid only while the vCPU exists.
public struct VCPUKicker: Sendable {
    let runPageAddress: UInt

    /// Asks the vCPU to return `.interrupted` from its current or next `run()`.
    public func requestExit() {
        guard let run = UnsafeMutablePointer<kvm_run>(bitPattern: runPageAddress) else { return }
        ckvm_store_immediate_exit(run, 1)
    }
}
