import KVM
import VMCore

extension Machine {
    /// Finishes the instruction of the bootstrap processor's last port or
    /// MMIO exit without running any further guest code, for a caller that
    /// drives it exit by exit (`nextExit()`, `dispatch(_:)`) and must stop at
    /// an instruction boundary: a single step, a look at the registers.
    ///
    /// KVM completes such an instruction only on the next `KVM_RUN`; this one
    /// runs with `immediate_exit` set (`KVMVCPU.completePendingIO()`).
    /// Dispatch the exit (or answer the read) first. Returns nil when the
    /// instruction is done, or the exit it ended with instead: the next
    /// element of a `rep ins/outs` (dispatch it and call this again), or a
    /// `.debug` exit when single-stepping reports the finished instruction.
    public func completePendingAccess() throws(MachineError) -> VMExit? {
        do { return try bootstrap.vcpu.completePendingIO() } catch { throw .kvm(error) }
    }
}
