import KVM
import VMCore

// Interrupts from outside the guest's devices: for tests and debuggers that
// want to see how a guest handles one at a moment they choose.

extension Machine {
    /// Raises interrupt line `irq` of the PC platform's in-kernel PIC and
    /// IOAPIC as an edge (high, then low), as an ISA device would: the guest
    /// gets it at the vector it programmed for that line, once it unmasks the
    /// line and enables interrupts. The corresponding ioctl is `KVM_IRQ_LINE`.
    public func raiseIRQ(_ irq: UInt32) throws(MachineError) {
        guard platform == .pc else { throw .wrongPlatform(operation: "raising IRQ line \(irq)", needs: .pc) }
        do {
            try vm.setIRQLine(irq, level: true)
            try vm.setIRQLine(irq, level: false)
        } catch { throw .kvm(error) }
    }

    /// Injects external interrupt `vector` into the bootstrap processor, on a
    /// machine with no interrupt controller (the minimal platform). KVM
    /// delivers it before the guest's next instruction even with RFLAGS.IF
    /// clear, so call it only while the guest accepts interrupts.
    /// The corresponding ioctl is `KVM_INTERRUPT`.
    public func injectInterrupt(vector: UInt8) throws(MachineError) {
        guard platform == .minimal else {
            throw .wrongPlatform(operation: "injecting vector \(hex(vector)) directly (raise an IRQ line instead)", needs: .minimal)
        }
        do { try bootstrap.vcpu.injectInterrupt(vector: vector) } catch { throw .kvm(error) }
    }

    /// Injects a non-maskable interrupt into the bootstrap processor.
    /// The corresponding ioctl is `KVM_NMI`.
    public func injectNMI() throws(MachineError) {
        do { try bootstrap.vcpu.injectNMI() } catch { throw .kvm(error) }
    }
}
