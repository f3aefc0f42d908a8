internal import CKVM
import Synchronization
import SystemPackage
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// A KVM virtual machine (a VM file descriptor). Closes it when it ends,
/// which also releases its memory slots.
public struct KVMVirtualMachine: ~Copyable {
    let fd: Int32
    let vcpuMmapSize: Int
    /// The page count of each slot registered with dirty logging, so that a
    /// dirty bitmap is always as large as KVM will write it.
    let dirtyLogSlots = ThreadLock<[UInt32: Int]>([:])

    init(fd: Int32, vcpuMmapSize: Int) {
        self.fd = fd
        self.vcpuMmapSize = vcpuMmapSize
    }

    deinit { close(fd) }

    /// Maps `size` bytes of host memory at `hostAddress` into the guest at `guestAddress`.
    ///
    /// The caller must keep that host memory mapped for as long as the slot is
    /// registered (until the VM ends or the slot is resized to 0): KVM reads and
    /// writes it on the guest's behalf. `GuestMemory.hostMappings` provides
    /// addresses that meet this when the memory outlives the VM.
    ///
    /// With `logDirtyPages`, KVM records every page the guest (or KVM on its
    /// behalf) writes, for `dirtyLog(slot:pageCount:)`; it costs a write fault
    /// per page after each harvest, so only slots that are snapshotted or
    /// migrated should have it. The corresponding ioctl is `KVM_SET_USER_MEMORY_REGION`.
    public func setUserMemoryRegion(
        slot: UInt32, guestAddress: GuestAddress, size: UInt64, hostAddress: UInt, readOnly: Bool = false,
        logDirtyPages: Bool = false
    ) throws(KVMError) {
        var flags: UInt32 = readOnly ? UInt32(KVM_MEM_READONLY) : 0
        if logDirtyPages { flags |= UInt32(KVM_MEM_LOG_DIRTY_PAGES) }
        var region = kvm_userspace_memory_region(
            slot: slot, flags: flags, guest_phys_addr: guestAddress.rawValue, memory_size: size, userspace_addr: UInt64(hostAddress))
        _ = try check(ckvm_set_user_memory_region(fd, &region), .setUserMemoryRegion(slot: slot))
        dirtyLogSlots.withLock { slots in
            slots[slot] = logDirtyPages && size > 0 ? Int(size / Self.dirtyPageSize) : nil
        }
    }

    /// Sets the guest-physical address of the three pages Intel VT-x needs for a
    /// TSS when it runs real-mode code without unrestricted guest support.
    /// The corresponding ioctl is `KVM_SET_TSS_ADDR`.
    public func setTSSAddress(_ address: GuestAddress) throws(KVMError) {
        _ = try check(ckvm_set_tss_addr(fd, UInt(address.rawValue)), .setTSSAddress)
    }

    /// Sets the guest-physical address of the page VT-x uses for an identity map
    /// in real mode. The corresponding ioctl is `KVM_SET_IDENTITY_MAP_ADDR`.
    public func setIdentityMapAddress(_ address: GuestAddress) throws(KVMError) {
        var value = address.rawValue
        _ = try check(ckvm_set_identity_map_addr(fd, &value), .setIdentityMapAddress)
    }

    /// Whether this VM has `capability`. The corresponding ioctl is `KVM_CHECK_EXTENSION` on the VM.
    public func checkExtension(_ capability: KVMCapability) throws(KVMError) -> Int32 {
        try check(ckvm_check_extension(fd, Int(capability.rawValue)), .checkExtension(capability: capability.rawValue))
    }

    /// Creates the in-kernel PIC, IOAPIC and LAPICs. The corresponding ioctl is `KVM_CREATE_IRQCHIP`.
    public func createIRQChip() throws(KVMError) {
        _ = try check(ckvm_create_irqchip(fd), .createIRQChip)
    }

    /// Creates the in-kernel i8254 PIT, whose IRQ 0 goes to the in-kernel PIC
    /// and IOAPIC. Requires `createIRQChip()` first. The corresponding ioctl is `KVM_CREATE_PIT2`.
    public func createPIT() throws(KVMError) {
        var config = kvm_pit_config()
        _ = try check(ckvm_create_pit2(fd, &config), .createPIT)
    }

    /// A handle devices can use to drive in-kernel interrupt line `irq` from
    /// any thread. It does not own the VM: use it only while the VM exists.
    public func interruptLine(_ irq: UInt32) -> KVMInterruptLine { KVMInterruptLine(vmFD: fd, irq: irq) }

    /// Drives in-kernel interrupt line `irq` to `level`. The corresponding ioctl is `KVM_IRQ_LINE`.
    public func setIRQLine(_ irq: UInt32, level: Bool) throws(KVMError) {
        var line = kvm_irq_level()
        line.irq = irq
        line.level = level ? 1 : 0
        _ = try check(ckvm_irq_line(fd, &line), .irqLine(irq: irq))
    }

    /// Replaces the in-kernel interrupt routing: each entry sends interrupt
    /// line `gsi` to one pin of the in-kernel PIC or IOAPIC (a line may have
    /// several entries, one per chip). The corresponding ioctl is `KVM_SET_GSI_ROUTING`.
    public func setGSIRouting(_ routes: [IRQRoute]) throws(KVMError) {
        try withFlexibleArray(kvm_irq_routing.self, kvm_irq_routing_entry.self, count: routes.count) {
            (header, entries) throws(KVMError) in
            header.pointee.nr = UInt32(routes.count)
            for (i, route) in routes.enumerated() {
                entries[i].gsi = route.gsi
                entries[i].type = UInt32(KVM_IRQ_ROUTING_IRQCHIP)
                entries[i].u.irqchip.irqchip = route.chip.rawValue
                entries[i].u.irqchip.pin = route.pin
            }
            _ = try check(ckvm_set_gsi_routing(fd, header), .setGSIRouting)
        }
    }

    /// Creates vCPU `id` and maps its `kvm_run` page.
    /// The corresponding ioctl is `KVM_CREATE_VCPU`.
    public func createVCPU(id: UInt32) throws(KVMError) -> KVMVCPU {
        let vcpuFD = try check(ckvm_create_vcpu(fd, UInt(id)), .createVCPU(id: id))
        // What the vCPU's state is made of on this host, asked once here so that
        // saving state needs no capability checks.
        let xsave2Size = Int(ckvm_check_extension(fd, Int(KVM_CAP_XSAVE2)))
        let hasXSAVE = ckvm_check_extension(fd, Int(KVM_CAP_XSAVE)) > 0
        let hasXCRs = ckvm_check_extension(fd, Int(KVM_CAP_XCRS)) > 0
        let xsaveSize = xsave2Size > 0 ? xsave2Size : (hasXSAVE ? MemoryLayout<kvm_xsave>.size : 0)
        return try KVMVCPU(
            fd: vcpuFD, runPageSize: vcpuMmapSize, xsaveSize: xsaveSize, usesXSAVE2: xsave2Size > 0, hasXCRs: hasXCRs)
    }
}

/// An in-kernel interrupt line (PIC and IOAPIC input `irq`), driven with
/// `KVM_IRQ_LINE`. Valid only while its VM exists; the machine that made it
/// owns both. Safe from any thread: KVM serialises the ioctl.
public final class KVMInterruptLine: InterruptLine, Sendable {
    let vmFD: Int32
    public let irq: UInt32
    private let failureCount = Atomic<Int>(0)

    /// How many `KVM_IRQ_LINE` calls failed. They only fail for a VM without
    /// an irqchip or a bad irq number, a VMM bug that tests check for.
    public var failures: Int { failureCount.load(ordering: .relaxed) }

    init(vmFD: Int32, irq: UInt32) {
        self.vmFD = vmFD
        self.irq = irq
    }

    public func setLevel(_ high: Bool) {
        var line = kvm_irq_level()
        line.irq = irq
        line.level = high ? 1 : 0
        let result = ckvm_irq_line(vmFD, &line)
        if result < 0 { failureCount.add(1, ordering: .relaxed) }
    }
}
