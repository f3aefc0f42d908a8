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
}
