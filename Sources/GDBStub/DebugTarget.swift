import VMCore

/// What the GDB protocol engine debugs: a machine whose vCPUs are threads.
///
/// Every method except `interrupt()` is called while the target is stopped
/// (after `attach` or a stop was reported, before the next `resume`), from
/// the stub's thread. Threads are vCPU indices from 0.
public protocol DebugTarget: AnyObject, Sendable {
    /// How many vCPUs (threads) there are.
    var vcpuCount: Int { get }

    /// Stops the target if it runs (all vCPUs) and returns where it stands.
    /// `onStop` is how the target later reports each stop after a `resume`,
    /// from any thread, once per resume.
    func attach(onStop: @escaping @Sendable (DebugStop) -> Void) -> DebugStop

    func registers(vcpu: Int) throws(DebugTargetError) -> X86RegisterFile
    func setRegisters(_ registers: X86RegisterFile, vcpu: Int) throws(DebugTargetError)
    /// Reads guest-virtual memory as `vcpu` sees it now (its paging mode and page tables).
    func readMemory(at address: UInt64, count: Int, vcpu: Int) throws(DebugTargetError) -> [UInt8]
    func writeMemory(_ bytes: [UInt8], at address: UInt64, vcpu: Int) throws(DebugTargetError)

    /// Programs the four debug-register slots on every vCPU.
    func setHardwareSlots(_ slots: [HardwareBreakpoint?]) throws(DebugTargetError)
    /// Plants a breakpoint instruction at `address` and recognises it when the guest reaches it.
    func insertSoftwareBreakpoint(at address: UInt64, vcpu: Int) throws(DebugTargetError)
    func removeSoftwareBreakpoint(at address: UInt64, vcpu: Int) throws(DebugTargetError)

    /// Lets the target run: `actions[i]` for vCPU i (`nil`: it stays stopped if
    /// the target can keep it so, else it continues). Returns at once; the stop
    /// comes through `onStop`.
    func resume(_ actions: [GDBResumeAction?])
    /// Asks a running target to stop; `onStop` reports `.interrupted` (or whatever stop came first).
    func interrupt()
    /// The debugger left: breakpoints are gone, the target runs on.
    func detach()
    /// The debugger asked for the machine to end.
    func kill()
}
