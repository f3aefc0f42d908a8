import GuestMemory
import KVM
import SwiftVMMConfig
import Synchronization
import VMCore
import X86Boot

/// Whether this host's KVM completes a guest's `vmcall`, found once per
/// process by running one in a throw-away VM.
///
/// Some back ends never do: on KVM's PVM back end a `vmcall` in emulated
/// ring-0 or real-mode code is re-executed inside `KVM_RUN` forever, with no
/// exit to user space, whatever the hypercall. Linux makes hypercalls for
/// KVM's paravirtual IPIs (`KVM_HC_SEND_IPI`), directed yield
/// (`KVM_HC_SCHED_YIELD`) and the paravirtual spinlocks' kick
/// (`KVM_HC_KICK_CPU`) when CPUID leaf 0x40000001 offers them, so a
/// multi-processor Linux guest on such a host hangs as soon as its second
/// CPU sends its first IPI. Where the probe fails, a machine with more than
/// one vCPU hides those three features: the guest then uses the local APIC
/// and plain spinning, which every host carries out.
public enum HypercallProbe {
    /// The KVM features whose use is a hypercall, hidden where hypercalls hang.
    public static let featuresNeedingHypercalls = ["kvm-pv-send-ipi", "kvm-pv-sched-yield", "kvm-pv-unhalt"]

    /// How long the probe's `vmcall` may take. A host that completes it does so
    /// in microseconds; a busy one may not schedule the probe for a while, and
    /// a wrong "no" costs only speed (the features above), never correctness.
    static let deadline: Duration = .milliseconds(50)

    private static let cached = Mutex<Bool?>(nil)

    /// Whether a `vmcall` completes on this host (probed on the first call;
    /// every later call returns the same answer). A host where the probe
    /// cannot run at all (no KVM) answers `true`: nothing is hidden on its
    /// account, and building the machine reports the real problem.
    public static var hypercallsComplete: Bool {
        cached.withLock { value in
            if let value { return value }
            let result = (try? probe()) ?? true
            value = result
            return result
        }
    }

    /// Real-mode code at 0x1000: hypercall 0 (no such hypercall: KVM answers
    /// -KVM_ENOSYS in EAX), then `out %al, $0x10`, the exit that says the
    /// `vmcall` completed.
    static let code: [UInt8] = [
        0x66, 0x31, 0xc0,  // xor %eax, %eax
        0x0f, 0x01, 0xc1,  // vmcall
        0xe6, 0x10,  // out %al, $0x10
        0xf4,  // hlt
    ]

    static func probe() throws -> Bool {
        let kvm = try KVMSystem()
        let memory = try GuestMemory(size: 0x2000)
        try memory.write(code, at: GuestAddress(0x1000))
        let vm = try kvm.createVM()
        try vm.mapRAM(memory, logDirtyPages: false)
        var vcpu = try vm.createVCPU(id: 0)
        try vcpu.setCPUID(kvm.supportedCPUID())
        // The state every real-mode guest of swiftvmm's starts with.
        let entry = try CPUSetup.realMode(entry: 0x1000, stackTop: 0x1000)
        try vcpu.setSpecialRegisters(entry.specialRegisters)
        try vcpu.setRegisters(entry.registers)
        let deadline = RunDeadline(after: deadline, kicker: vcpu.kicker)
        defer { _ = deadline.disarm() }
        while true {
            switch try vcpu.run() {
            case .ioOut(port: 0x10, _, _, _): return true
            // Another signal of this thread's: run on until the deadline's.
            case .interrupted where !deadline.hasFired: continue
            default: return false
            }
        }
    }
}
