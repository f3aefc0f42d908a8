internal import CKVM
import VMCore

// Interrupts the VMM puts into a vCPU directly, for a machine without an
// in-kernel interrupt controller (and NMIs for any machine).

extension KVMVCPU {
    /// Queues external interrupt `vector` for the vCPU; KVM delivers it at the
    /// next entry *whatever RFLAGS.IF says*, so inject only while the guest
    /// accepts interrupts. Only for a VM without an in-kernel irqchip (with
    /// one, KVM answers `ENXIO`: raise an IRQ line instead). The
    /// corresponding ioctl is `KVM_INTERRUPT`.
    public func injectInterrupt(vector: UInt8) throws(KVMError) {
        var interrupt = kvm_interrupt()
        interrupt.irq = UInt32(vector)
        _ = try check(ckvm_interrupt(fd, &interrupt), .interrupt(vector: vector))
    }

    /// Queues a non-maskable interrupt for the vCPU. The corresponding ioctl is `KVM_NMI`.
    public func injectNMI() throws(KVMError) {
        _ = try check(ckvm_nmi(fd), .nmi)
    }
}
