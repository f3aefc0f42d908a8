internal import CKVM

/// The KVM ioctl request numbers swiftvmm makes, grouped by the fd they go
/// to, for the seccomp filters: a thread is allowed only the groups its job
/// needs (a vCPU thread cannot create a VM or map memory into one).
public enum KVMRequests {
    /// `/dev/kvm`'s: the API version, capabilities, creating a VM, supported CPUID and MSRs.
    public static let system = requests(CKVM_SYSTEM_REQUESTS)
    /// The VM fd's while a machine is built: memory regions, vCPUs, the irqchip, the PIT, eventfds.
    public static let vmSetup = requests(CKVM_VM_SETUP_REQUESTS)
    /// The VM fd's while it runs: interrupt lines, irqchip, PIT and clock state, the dirty log.
    public static let vmRuntime = requests(CKVM_VM_RUNTIME_REQUESTS)
    /// The vCPU fds': `KVM_RUN`, registers and the rest of a vCPU's state, interrupts, debugging.
    public static let vcpu = requests(CKVM_VCPU_REQUESTS)

    private static func requests(_ group: ckvm_request_group) -> [UInt32] {
        var pointer: UnsafePointer<UInt>?
        let count = Int(ckvm_requests(group, &pointer))
        // The kernel takes the request as an unsigned int: the low 32 bits are what it compares.
        guard let pointer else { return [] }
        return (0..<count).map { UInt32(truncatingIfNeeded: pointer[$0]) }
    }
}
