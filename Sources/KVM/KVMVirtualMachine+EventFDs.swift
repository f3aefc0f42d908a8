internal import CKVM
import VMCore

// Device I/O that never stops a vCPU thread in user space: a guest write to a
// doorbell address signals an eventfd inside KVM (ioeventfd), and a device's
// write to an eventfd raises an interrupt inside KVM (irqfd). The I/O thread
// that serves the device waits on the first and writes the second.

extension KVMVirtualMachine {
    /// Makes a guest MMIO write of `length` bytes (1, 2, 4 or 8) to
    /// `address` signal the eventfd `eventFD` instead of exiting to user
    /// space; with `value`, only writes of that value do (others still exit).
    /// The eventfd stays the caller's. The corresponding ioctl is `KVM_IOEVENTFD`.
    public func registerIOEventFD(_ eventFD: Int32, mmioAddress address: GuestAddress, length: UInt32, value: UInt64?)
        throws(KVMError)
    {
        var event = ioEvent(eventFD, address, length, value)
        _ = try check(ckvm_ioeventfd(fd, &event), .ioEventFD(address: address.rawValue))
    }

    /// Undoes `registerIOEventFD` with the same arguments.
    public func unregisterIOEventFD(_ eventFD: Int32, mmioAddress address: GuestAddress, length: UInt32, value: UInt64?)
        throws(KVMError)
    {
        var event = ioEvent(eventFD, address, length, value)
        event.flags |= UInt32(1 << kvm_ioeventfd_flag_nr_deassign)
        _ = try check(ckvm_ioeventfd(fd, &event), .ioEventFD(address: address.rawValue))
    }

    private func ioEvent(_ eventFD: Int32, _ address: GuestAddress, _ length: UInt32, _ value: UInt64?) -> kvm_ioeventfd {
        var event = kvm_ioeventfd()
        event.fd = eventFD
        event.addr = address.rawValue
        event.len = length
        if let value {
            event.datamatch = value
            event.flags = UInt32(1 << kvm_ioeventfd_flag_nr_datamatch)
        }
        return event
    }

    /// Makes each write to the eventfd `eventFD` raise interrupt line `gsi`
    /// (an edge: the line goes high and low again) inside KVM, from any
    /// thread, without a system call on the VM. Needs the in-kernel irqchip.
    /// The corresponding ioctl is `KVM_IRQFD`.
    public func registerIRQFD(_ eventFD: Int32, gsi: UInt32) throws(KVMError) {
        var irqfd = kvm_irqfd()
        irqfd.fd = UInt32(bitPattern: eventFD)
        irqfd.gsi = gsi
        _ = try check(ckvm_irqfd(fd, &irqfd), .irqFD(gsi: gsi))
    }

    /// Undoes `registerIRQFD`.
    public func unregisterIRQFD(_ eventFD: Int32, gsi: UInt32) throws(KVMError) {
        var irqfd = kvm_irqfd()
        irqfd.fd = UInt32(bitPattern: eventFD)
        irqfd.gsi = gsi
        irqfd.flags = UInt32(KVM_IRQFD_FLAG_DEASSIGN)
        _ = try check(ckvm_irqfd(fd, &irqfd), .irqFD(gsi: gsi))
    }
}
