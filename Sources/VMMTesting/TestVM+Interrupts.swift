import SwiftVMM

extension TestVM {
    /// Raises interrupt line `irq` (an edge) on the PC platform's in-kernel
    /// PIC and IOAPIC, as a device on that line would: the guest takes it at
    /// the vector it programmed, once it has unmasked the line and enabled
    /// interrupts. On the minimal platform, which has no interrupt
    /// controller, use `injectInterrupt(vector:)`.
    public func raiseIRQ(_ irq: UInt32) throws(VMTestError) {
        do { try machine.raiseIRQ(irq) } catch { throw self.error(.invalidRequest(error.description)) }
        trace.annotateLast(appending: "IRQ \(irq) raised by the test")
    }

    /// Injects external interrupt `vector` on the minimal platform (no
    /// interrupt controller), delivered before the guest's next instruction.
    /// The guest must have interrupts enabled (RFLAGS.IF): KVM would deliver
    /// the vector regardless, which no real CPU does, so this throws instead.
    public func injectInterrupt(vector: UInt8) throws(VMTestError) {
        guard try registers().interruptsEnabled else {
            throw error(
                .invalidRequest(
                    "the guest has interrupts disabled (RFLAGS.IF clear): vector \(hex(vector)) cannot be delivered now; inject it once the guest has executed sti"
                ))
        }
        do { try machine.injectInterrupt(vector: vector) } catch { throw self.error(.invalidRequest(error.description)) }
        trace.annotateLast(appending: "vector \(hex(vector)) injected by the test")
    }

    /// Injects a non-maskable interrupt (vector 2) on any platform.
    public func injectNMI() throws(VMTestError) {
        do { try machine.injectNMI() } catch { throw self.error(.machine(error.description)) }
        trace.annotateLast(appending: "NMI injected by the test")
    }
}
