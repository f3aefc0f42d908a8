internal import CKVM
import SystemPackage
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// A KVM capability, as `KVM_CHECK_EXTENSION` takes it.
public struct KVMCapability: RawRepresentable, Hashable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let userMemory = KVMCapability(rawValue: KVM_CAP_USER_MEMORY)
    public static let immediateExit = KVMCapability(rawValue: KVM_CAP_IMMEDIATE_EXIT)
    public static let setTSSAddress = KVMCapability(rawValue: KVM_CAP_SET_TSS_ADDR)
    public static let setIdentityMapAddress = KVMCapability(rawValue: KVM_CAP_SET_IDENTITY_MAP_ADDR)
    public static let irqchip = KVMCapability(rawValue: KVM_CAP_IRQCHIP)
    public static let pit2 = KVMCapability(rawValue: KVM_CAP_PIT2)
    public static let irqRouting = KVMCapability(rawValue: KVM_CAP_IRQ_ROUTING)
    public static let setGuestDebug = KVMCapability(rawValue: KVM_CAP_SET_GUEST_DEBUG)
    public static let maxVCPUs = KVMCapability(rawValue: KVM_CAP_MAX_VCPUS)
    public static let nrMemorySlots = KVMCapability(rawValue: KVM_CAP_NR_MEMSLOTS)
    public static let extendedCPUID = KVMCapability(rawValue: KVM_CAP_EXT_CPUID)
    public static let xsave = KVMCapability(rawValue: KVM_CAP_XSAVE)
    /// The XSAVE area's size in bytes, asked of a VM.
    public static let xsave2 = KVMCapability(rawValue: KVM_CAP_XSAVE2)
    public static let xcrs = KVMCapability(rawValue: KVM_CAP_XCRS)
    public static let debugRegisters = KVMCapability(rawValue: KVM_CAP_DEBUGREGS)
    public static let adjustClock = KVMCapability(rawValue: KVM_CAP_ADJUST_CLOCK)
    public static let tscControl = KVMCapability(rawValue: KVM_CAP_TSC_CONTROL)
    /// The dirty-log options a VM can enable (`KVM_DIRTY_LOG_*` bits).
    public static let manualDirtyLogProtect2 = KVMCapability(rawValue: KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)
}

/// An open `/dev/kvm`: the entry point to the hypervisor. Closes it when it ends.
public struct KVMSystem: ~Copyable {
    /// The only stable KVM API version; anything else is a kernel we don't understand.
    public static let stableAPIVersion: Int32 = 12

    let fd: Int32
    /// The size of each vCPU's `kvm_run` mapping.
    public let vcpuMmapSize: Int

    /// Opens `path` (normally `/dev/kvm`) and checks that it speaks the stable API.
    ///
    /// Hardware virtualization is not detected through CPUID vmx/svm flags,
    /// which some back ends (e.g. PVM) do not show: KVM itself is asked.
    public init(path: String = "/dev/kvm") throws(KVMError) {
        let fd = Glibc.open(path, O_RDWR | O_CLOEXEC)
        if fd < 0 { throw .failed(.open(path: path), Errno(rawValue: Glibc.errno)) }
        // Until `self` exists to own it, close the fd on every way out.
        do throws(KVMError) {
            let version = try check(ckvm_get_api_version(fd), .getAPIVersion)
            if version != Self.stableAPIVersion { throw KVMError.unsupportedAPIVersion(version) }
            vcpuMmapSize = Int(try check(ckvm_get_vcpu_mmap_size(fd), .getVCPUMmapSize))
        } catch {
            close(fd)
            throw error
        }
        self.fd = fd
    }

    /// Wraps an already-open descriptor (for tests of the error paths).
    init(adopting fd: Int32, vcpuMmapSize: Int) {
        self.fd = fd
        self.vcpuMmapSize = vcpuMmapSize
    }

    deinit { close(fd) }

    /// The API version `/dev/kvm` reports. The corresponding ioctl is `KVM_GET_API_VERSION`.
    public func apiVersion() throws(KVMError) -> Int32 {
        try check(ckvm_get_api_version(fd), .getAPIVersion)
    }

    /// 0 if `capability` is missing, otherwise a positive value whose meaning
    /// depends on the capability. The corresponding ioctl is `KVM_CHECK_EXTENSION`.
    public func checkExtension(_ capability: KVMCapability) throws(KVMError) -> Int32 {
        try check(ckvm_check_extension(fd, Int(capability.rawValue)), .checkExtension(capability: capability.rawValue))
    }

    /// Creates a virtual machine with no memory and no vCPUs.
    /// The corresponding ioctl is `KVM_CREATE_VM`.
    public func createVM() throws(KVMError) -> KVMVirtualMachine {
        let vmFD = try check(ckvm_create_vm(fd, 0), .createVM)
        return KVMVirtualMachine(fd: vmFD, vcpuMmapSize: vcpuMmapSize)
    }

    /// The CPUID leaves KVM can present to a guest on this host.
    /// The corresponding ioctl is `KVM_GET_SUPPORTED_CPUID`.
    public func supportedCPUID() throws(KVMError) -> [CPUIDEntry] {
        var capacity = 128
        while true {
            let entries: [CPUIDEntry]? = try withCPUIDBuffer(capacity: capacity) {
                (buffer: UnsafeMutablePointer<kvm_cpuid2>) throws(KVMError) -> [CPUIDEntry]? in
                let result = ckvm_get_supported_cpuid(fd, buffer)
                if result == -E2BIG { return nil }
                _ = try check(result, .getSupportedCPUID)
                return CPUIDEntry.decode(buffer)
            }
            if let entries { return entries }
            capacity *= 2
        }
    }

    /// Every MSR KVM can save and restore on this host: the ones the host CPU
    /// has and the ones KVM emulates. The corresponding ioctl is `KVM_GET_MSR_INDEX_LIST`.
    public func msrIndexList() throws(KVMError) -> [UInt32] {
        var capacity = 256
        while true {
            let indices: [UInt32]? = try withFlexibleArray(kvm_msr_list.self, UInt32.self, count: capacity) {
                (header, entries) throws(KVMError) -> [UInt32]? in
                header.pointee.nmsrs = UInt32(capacity)
                let result = ckvm_get_msr_index_list(fd, header)
                if result == -E2BIG { return nil }
                _ = try check(result, .getMSRIndexList)
                return Array(UnsafeBufferPointer(start: entries, count: Int(header.pointee.nmsrs)))
            }
            if let indices { return indices }
            capacity *= 2
        }
    }

    /// The MSRs a snapshot or migration has to carry on this host: those of
    /// `msrIndexList()` that `isMigratableMSR(_:)` accepts, plus the MTRRs,
    /// which KVM emulates for every guest but does not list. Probe them on a
    /// vCPU with `KVMVCPU.migratableMSRs(from:)` before relying on them.
    /// The corresponding ioctl is `KVM_GET_MSR_INDEX_LIST`.
    public func migratableMSRIndices() throws(KVMError) -> [UInt32] {
        var seen = Set<UInt32>()
        return (try msrIndexList().filter(Self.isMigratableMSR) + MigratableMSR.mtrrs).filter { seen.insert($0).inserted }
    }

    /// Whether MSR `index` holds guest state that must travel with a snapshot.
    ///
    /// EFER and APIC_BASE are not among them: they travel in the special
    /// registers, and writing them as MSRs too would race that. Performance
    /// counters, machine-check banks and read-only identification MSRs are
    /// left out: the new vCPU's own values are right for it.
    public static func isMigratableMSR(_ index: UInt32) -> Bool {
        MigratableMSR.singles.contains(index) || MigratableMSR.mtrrRange.contains(index)
            || MigratableMSR.kvmParavirtualRange.contains(index)
    }
}

/// The MSRs `KVMSystem.isMigratableMSR(_:)` accepts, by number.
enum MigratableMSR {
    static let singles: Set<UInt32> = [
        0x10,  // IA32_TSC
        0x3b,  // IA32_TSC_ADJUST
        0x6e0,  // IA32_TSC_DEADLINE (needs the in-kernel LAPIC)
        0x174, 0x175, 0x176,  // IA32_SYSENTER_CS/ESP/EIP
        0xc000_0081, 0xc000_0082, 0xc000_0083, 0xc000_0084,  // STAR, LSTAR, CSTAR, SFMASK
        0xc000_0100, 0xc000_0101, 0xc000_0102,  // FS_BASE, GS_BASE, KERNEL_GS_BASE
        0xc000_0103,  // TSC_AUX
        0x1a0,  // IA32_MISC_ENABLE
        0x277,  // IA32_PAT
        0xfe,  // IA32_MTRRCAP
        0x17a, 0x17b,  // IA32_MCG_STATUS, IA32_MCG_CTL
        0x11, 0x12,  // MSR_KVM_WALL_CLOCK, MSR_KVM_SYSTEM_TIME (legacy numbers)
        0x48,  // IA32_SPEC_CTRL
        0xda0,  // IA32_XSS (supervisor XSAVE components)
    ]
    /// The variable-range MTRR pairs, the fixed-range MTRRs and MTRRdefType (PAT is listed above).
    static let mtrrRange: ClosedRange<UInt32> = 0x200...0x2ff
    /// MSR_KVM_WALL_CLOCK_NEW, SYSTEM_TIME_NEW, ASYNC_PF_EN, STEAL_TIME, PV_EOI_EN,
    /// POLL_CONTROL, ASYNC_PF_INT and ASYNC_PF_ACK all live here.
    static let kvmParavirtualRange: ClosedRange<UInt32> = 0x4b56_4d00...0x4b56_4dff
    /// The MTRRs KVM emulates for every vCPU without listing them: MTRRCAP,
    /// the eight variable pairs, the eleven fixed ranges and MTRRdefType.
    static let mtrrs: [UInt32] = [0xfe] + Array(0x200...0x20f) + [0x250, 0x258, 0x259] + Array(0x268...0x26f) + [0x2ff]
}
