internal import CKVM
import SystemPackage
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

// Saving and restoring a vCPU: the pieces KVM keeps for it, and the order in
// which KVM needs them read and written.

extension KVMVCPU {
    /// Finishes the port I/O or MMIO access of the last exit without running
    /// any further guest code.
    ///
    /// KVM completes an `in`/`out` (advancing RIP, and for `in` loading the
    /// value `completeRead(_:)` supplied) only on the next `KVM_RUN`. State
    /// saved right after such an exit would capture the instruction half done,
    /// and a vCPU restored from it would redo the access or lose its result.
    /// This runs once with `kvm_run.immediate_exit` set, which makes KVM finish
    /// the access and return `EINTR` before entering the guest.
    ///
    /// Returns nil when the access is complete. A `rep ins/outs` whose next
    /// iteration needs the VMM again returns that exit instead: handle it as
    /// usual and call this again. The corresponding ioctl is `KVM_RUN`.
    public mutating func completePendingIO() throws(KVMError) -> VMExit? {
        page.setImmediateExit(true)
        defer { page.setImmediateExit(false) }
        while true {
            let result = ckvm_run(fd)
            if result == -EINTR { return nil }
            if result >= 0 { return page.decodeExit() }
            if result == -EAGAIN { continue }
            throw .failed(.run, Errno(rawValue: -result))
        }
    }

    /// The segment, control and descriptor-table registers together with the
    /// pending-interrupt bitmap. The corresponding ioctl is `KVM_GET_SREGS`.
    public func specialRegisterState() throws(KVMError) -> SpecialRegisterState {
        var sregs = kvm_sregs()
        _ = try check(ckvm_get_sregs(fd, &sregs), .getSpecialRegisters)
        return SpecialRegisterState(sregs)
    }

    /// Sets every special register, the pending-interrupt bitmap included
    /// (unlike `setSpecialRegisters(_:)`, which keeps KVM's bitmap). KVM checks
    /// CR4 and the APIC base against the vCPU's CPUID, so set that first.
    /// The corresponding ioctl is `KVM_SET_SREGS`.
    public func setSpecialRegisterState(_ state: SpecialRegisterState) throws(KVMError) {
        var sregs = try state.kvm(for: .setSpecialRegisters)
        _ = try check(ckvm_set_sregs(fd, &sregs), .setSpecialRegisters)
    }

    /// The XSAVE area (x87, SSE, AVX and every other component XCR0 enables),
    /// `KVM_CAP_XSAVE2` bytes long. Throws `missingCapability` where the host
    /// has no XSAVE; use `fpu()` there. The corresponding ioctl is
    /// `KVM_GET_XSAVE2` (or `KVM_GET_XSAVE` on kernels before 5.17).
    public func xsave() throws(KVMError) -> [UInt8] {
        guard xsaveSize > 0 else { throw .missingCapability("KVM_CAP_XSAVE") }
        let operation: KVMOperation = usesXSAVE2 ? .getXSAVE2 : .getXSAVE
        return try withXSAVEBuffer { (buffer) throws(KVMError) -> [UInt8] in
            let xsave = buffer.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: kvm_xsave.self)
            _ = try check(usesXSAVE2 ? ckvm_get_xsave2(fd, xsave) : ckvm_get_xsave(fd, xsave), operation)
            return Array(buffer)
        }
    }

    /// Loads the XSAVE area. It must be exactly as long as this host's (what
    /// `xsave()` returns here): KVM reads that many bytes whatever it is given.
    /// The corresponding ioctl is `KVM_SET_XSAVE`.
    public func setXSAVE(_ bytes: [UInt8]) throws(KVMError) {
        try checkXSAVE(bytes)
        try withXSAVEBuffer { (buffer) throws(KVMError) in
            buffer.copyBytes(from: bytes)
            let xsave = buffer.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: kvm_xsave.self)
            _ = try check(ckvm_set_xsave(fd, xsave), .setXSAVE)
        }
    }

    private func checkXSAVE(_ bytes: [UInt8]) throws(KVMError) {
        guard xsaveSize > 0 else { throw .missingCapability("KVM_CAP_XSAVE") }
        guard bytes.count == xsaveSize else {
            throw .stateSizeMismatch(field: "XSAVE area", expected: xsaveSize, actual: bytes.count, operation: .setXSAVE)
        }
    }

    private func withXSAVEBuffer<R>(_ body: (UnsafeMutableRawBufferPointer) throws(KVMError) -> R) throws(KVMError) -> R {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: xsaveSize, alignment: 64)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        return try body(buffer)
    }

    /// The extended control registers (XCR0). Empty where the host has no
    /// XSAVE. The corresponding ioctl is `KVM_GET_XCRS`.
    public func xcrs() throws(KVMError) -> [XCR] {
        guard hasXCRs else { return [] }
        var xcrs = kvm_xcrs()
        _ = try check(ckvm_get_xcrs(fd, &xcrs), .getXCRs)
        let count = min(Int(xcrs.nr_xcrs), Int(KVM_MAX_XCRS))
        return withUnsafeBytes(of: xcrs.xcrs) { raw in
            raw.bindMemory(to: kvm_xcr.self).prefix(count).map { XCR(index: $0.xcr, value: $0.value) }
        }
    }

    /// The corresponding ioctl is `KVM_SET_XCRS`.
    public func setXCRs(_ registers: [XCR]) throws(KVMError) {
        var xcrs = try Self.kvmXCRs(registers)
        guard hasXCRs else {
            if registers.isEmpty { return }
            throw .missingCapability("KVM_CAP_XCRS")
        }
        _ = try check(ckvm_set_xcrs(fd, &xcrs), .setXCRs)
    }

    private static func kvmXCRs(_ registers: [XCR]) throws(KVMError) -> kvm_xcrs {
        guard registers.count <= Int(KVM_MAX_XCRS) else {
            throw .stateSizeMismatch(field: "XCRs", expected: Int(KVM_MAX_XCRS), actual: registers.count, operation: .setXCRs)
        }
        var xcrs = kvm_xcrs()
        xcrs.nr_xcrs = UInt32(registers.count)
        withUnsafeMutableBytes(of: &xcrs.xcrs) { raw in
            let out = raw.bindMemory(to: kvm_xcr.self)
            for (i, register) in registers.enumerated() { out[i] = kvm_xcr(xcr: register.index, reserved: 0, value: register.value) }
        }
        return xcrs
    }

    /// The guest's debug registers. The corresponding ioctl is `KVM_GET_DEBUGREGS`.
    public func debugRegisters() throws(KVMError) -> DebugRegisters {
        var regs = kvm_debugregs()
        _ = try check(ckvm_get_debugregs(fd, &regs), .getDebugRegisters)
        return DebugRegisters(regs)
    }

    /// The corresponding ioctl is `KVM_SET_DEBUGREGS`.
    public func setDebugRegisters(_ registers: DebugRegisters) throws(KVMError) {
        var regs = try registers.kvm()
        _ = try check(ckvm_set_debugregs(fd, &regs), .setDebugRegisters)
    }

    /// The exception, interrupt, NMI, SMI and SIPI state KVM holds between
    /// instructions. The corresponding ioctl is `KVM_GET_VCPU_EVENTS`.
    public func events() throws(KVMError) -> VCPUEvents {
        var events = kvm_vcpu_events()
        _ = try check(ckvm_get_vcpu_events(fd, &events), .getVCPUEvents)
        return VCPUEvents(events)
    }

    /// The corresponding ioctl is `KVM_SET_VCPU_EVENTS`.
    public func setEvents(_ events: VCPUEvents) throws(KVMError) {
        var raw = events.kvm
        _ = try check(ckvm_set_vcpu_events(fd, &raw), .setVCPUEvents)
    }

    /// The guest's TSC frequency in kHz. The corresponding ioctl is `KVM_GET_TSC_KHZ`.
    public func tscKHz() throws(KVMError) -> UInt32 {
        UInt32(try check(ckvm_get_tsc_khz(fd), .getTSCKHz))
    }

    /// Scales the guest's TSC to `kHz` (needs `KVM_CAP_TSC_CONTROL`, or a
    /// value the host TSC already runs at). The corresponding ioctl is `KVM_SET_TSC_KHZ`.
    public func setTSCKHz(_ kHz: UInt32) throws(KVMError) {
        _ = try check(ckvm_set_tsc_khz(fd, UInt(kHz)), .setTSCKHz)
    }

    /// The local APIC's register page, or nil when the vCPU has none in the
    /// kernel (its VM has no irqchip, for which KVM answers `EINVAL`).
    func lapicIfPresent() throws(KVMError) -> [UInt8]? {
        var state = kvm_lapic_state()
        let result = ckvm_get_lapic(fd, &state)
        if result == -EINVAL { return nil }
        _ = try check(result, .getLAPIC)
        return withUnsafeBytes(of: state.regs) { Array($0) }
    }

    /// Reads `indices` in order, keeping that order. Throws `msrsRejected` at the first one KVM refuses.
    func msrEntries(_ indices: [UInt32]) throws(KVMError) -> [MSREntry] {
        try withMSRBuffer(indices.map { ($0, 0) }) { (header, entries) throws(KVMError) -> [MSREntry] in
            let read = Int(try check(ckvm_get_msrs(fd, header), .getMSRs))
            if read < indices.count { throw .msrsRejected(index: indices[read], operation: .getMSRs) }
            return (0..<read).map { MSREntry(index: entries[$0].index, value: entries[$0].data) }
        }
    }

    /// Splits `candidates` (normally `KVMSystem.migratableMSRIndices()`) into
    /// the MSRs this vCPU can both read and write back and those KVM refuses.
    ///
    /// Not every candidate can travel: IA32_MTRRCAP reads but is read-only,
    /// so KVM refuses to have it written (the only refusal on this project's
    /// PVM host), and a back end may refuse MSRs KVM lists. `KVM_GET_MSRS` and
    /// `KVM_SET_MSRS` stop at the first refusal, so one such MSR would fail
    /// every snapshot or restore. Probing once while the machine is built,
    /// before the guest runs, drops it for good. Each MSR's current value is
    /// written back to it, which changes nothing at that point.
    /// The corresponding ioctls are `KVM_GET_MSRS` and `KVM_SET_MSRS`.
    public func migratableMSRs(from candidates: [UInt32]) throws(KVMError) -> (accepted: [UInt32], refused: [UInt32]) {
        var accepted = candidates
        var refused: [UInt32] = []
        while true {
            do {
                let entries = try msrEntries(accepted)
                try setMSRs(entries.map { ($0.index, $0.value) })
                return (accepted, refused)
            } catch {
                guard case .msrsRejected(let index, _) = error, let position = accepted.firstIndex(of: index) else { throw error }
                accepted.remove(at: position)
                refused.append(index)
            }
        }
    }

    /// Reads everything KVM holds for this vCPU, in the order KVM needs: the
    /// MP state first (reading it makes KVM act on a pending INIT or SIPI,
    /// which changes the registers), the vCPU events last (reading the other
    /// state can still queue an event).
    ///
    /// Call it with the vCPU stopped outside `KVM_RUN`, and after an I/O exit
    /// only once `completePendingIO()` has finished the access. `msrIndices`
    /// should be the `accepted` list of `migratableMSRs(from:)`.
    /// The corresponding ioctls are `KVM_GET_MP_STATE`, `KVM_GET_REGS`,
    /// `KVM_GET_SREGS`, `KVM_GET_XSAVE2`, `KVM_GET_XCRS`, `KVM_GET_DEBUGREGS`,
    /// `KVM_GET_LAPIC`, `KVM_GET_MSRS`, `KVM_GET_TSC_KHZ` and `KVM_GET_VCPU_EVENTS`.
    public func saveState(msrIndices: [UInt32]) throws(KVMError) -> VCPUState {
        let mpState = try mpState()
        let registers = try registers()
        let special = try specialRegisterState()
        let floatingPoint: FloatingPointState = xsaveSize > 0 ? .xsave(try xsave()) : .fpu(try fpu())
        let xcrs = try xcrs()
        let debug = try debugRegisters()
        let lapic = try lapicIfPresent()
        let msrs = try msrEntries(msrIndices)
        // Some back ends cannot report the frequency; a state without it restores at the host's.
        let khz = ckvm_get_tsc_khz(fd)
        let events = try events()
        return VCPUState(
            mpState: mpState, registers: registers, specialRegisters: special, floatingPoint: floatingPoint, xcrs: xcrs,
            debugRegisters: debug, lapic: lapic, msrs: msrs, events: events, tscKHz: khz > 0 ? UInt32(khz) : nil)
    }

    /// Puts `state` into this vCPU, in the order KVM needs: MP state and
    /// registers, then the special registers (the APIC base, which decides how
    /// the LAPIC page is read), the FPU/XSAVE state and XCRs, the LAPIC, then
    /// the MSRs (after the LAPIC, or KVM drops `IA32_TSC_DEADLINE`), debug
    /// registers, and the events last, once the registers they refer to are in.
    ///
    /// The machine must set the vCPU's CPUID before this: KVM checks CR4,
    /// XCR0, the XSAVE area and several MSRs against it. Every part of `state`
    /// is checked before the first ioctl, so malformed state throws
    /// `stateSizeMismatch` and leaves the vCPU untouched; an error from KVM
    /// itself can leave it partly restored.
    /// The corresponding ioctls are the `KVM_SET_*` counterparts of `saveState(msrIndices:)`'s.
    public func restoreState(_ state: VCPUState) throws(KVMError) {
        var sregs = try state.specialRegisters.kvm(for: .setSpecialRegisters)
        if case .xsave(let bytes) = state.floatingPoint { try checkXSAVE(bytes) }
        var xcrs = try Self.kvmXCRs(state.xcrs)
        if !hasXCRs && !state.xcrs.isEmpty { throw .missingCapability("KVM_CAP_XCRS") }
        let lapic = try state.lapic.map { (page) throws(KVMError) in try Self.lapicState(page) }
        var debug = try state.debugRegisters.kvm()

        if let khz = state.tscKHz {
            let current = ckvm_get_tsc_khz(fd)
            if current != Int32(bitPattern: khz) { try setTSCKHz(khz) }
        }
        try setMPState(state.mpState)
        try setRegisters(state.registers)
        _ = try check(ckvm_set_sregs(fd, &sregs), .setSpecialRegisters)
        switch state.floatingPoint {
        case .xsave(let bytes): try setXSAVE(bytes)
        case .fpu(let fpu): try setFPU(fpu)
        }
        if hasXCRs { _ = try check(ckvm_set_xcrs(fd, &xcrs), .setXCRs) }
        if var lapic { _ = try check(ckvm_set_lapic(fd, &lapic), .setLAPIC) }
        try setMSRs(state.msrs.map { ($0.index, $0.value) })
        _ = try check(ckvm_set_debugregs(fd, &debug), .setDebugRegisters)
        try setEvents(state.events)
    }
}
