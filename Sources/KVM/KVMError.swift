import SystemPackage
import VMCore

/// The KVM operation that failed, named after its ioctl.
public enum KVMOperation: Hashable, Sendable, CustomStringConvertible {
    case open(path: String)
    case getAPIVersion
    case checkExtension(capability: Int32)
    case getVCPUMmapSize
    case createVM
    case setUserMemoryRegion(slot: UInt32)
    case setTSSAddress
    case setIdentityMapAddress
    case createIRQChip
    case createPIT
    case irqLine(irq: UInt32)
    case setGSIRouting
    case createVCPU(id: UInt32)
    case mapRunPage
    case run
    case getRegisters, setRegisters
    case getSpecialRegisters, setSpecialRegisters
    case getFPU, setFPU
    case getMSRs, setMSRs
    case getSupportedCPUID, setCPUID
    case setGuestDebug
    case translate
    case getLAPIC, setLAPIC
    case getMPState, setMPState
    case getVCPUEvents, setVCPUEvents
    case getMSRIndexList
    case getXSAVE, getXSAVE2, setXSAVE
    case getXCRs, setXCRs
    case getDebugRegisters, setDebugRegisters
    case getTSCKHz, setTSCKHz
    case getIRQChip(chip: UInt32), setIRQChip(chip: UInt32)
    case getPIT, setPIT
    case getClock, setClock
    case getDirtyLog(slot: UInt32), clearDirtyLog(slot: UInt32)
    case enableCapability(capability: Int32)
    case ioEventFD(address: UInt64), irqFD(gsi: UInt32)
    case interrupt(vector: UInt8)
    case nmi

    public var description: String {
        switch self {
        case .open(let path): return "open(\(path))"
        case .getAPIVersion: return "KVM_GET_API_VERSION"
        case .checkExtension(let capability): return "KVM_CHECK_EXTENSION (capability \(capability))"
        case .getVCPUMmapSize: return "KVM_GET_VCPU_MMAP_SIZE"
        case .createVM: return "KVM_CREATE_VM"
        case .setUserMemoryRegion(let slot): return "KVM_SET_USER_MEMORY_REGION (slot \(slot))"
        case .setTSSAddress: return "KVM_SET_TSS_ADDR"
        case .setIdentityMapAddress: return "KVM_SET_IDENTITY_MAP_ADDR"
        case .createIRQChip: return "KVM_CREATE_IRQCHIP"
        case .createPIT: return "KVM_CREATE_PIT2"
        case .irqLine(let irq): return "KVM_IRQ_LINE (irq \(irq))"
        case .setGSIRouting: return "KVM_SET_GSI_ROUTING"
        case .createVCPU(let id): return "KVM_CREATE_VCPU (id \(id))"
        case .mapRunPage: return "mmap of the kvm_run page"
        case .run: return "KVM_RUN"
        case .getRegisters: return "KVM_GET_REGS"
        case .setRegisters: return "KVM_SET_REGS"
        case .getSpecialRegisters: return "KVM_GET_SREGS"
        case .setSpecialRegisters: return "KVM_SET_SREGS"
        case .getFPU: return "KVM_GET_FPU"
        case .setFPU: return "KVM_SET_FPU"
        case .getMSRs: return "KVM_GET_MSRS"
        case .setMSRs: return "KVM_SET_MSRS"
        case .getSupportedCPUID: return "KVM_GET_SUPPORTED_CPUID"
        case .setCPUID: return "KVM_SET_CPUID2"
        case .setGuestDebug: return "KVM_SET_GUEST_DEBUG"
        case .translate: return "KVM_TRANSLATE"
        case .getLAPIC: return "KVM_GET_LAPIC"
        case .setLAPIC: return "KVM_SET_LAPIC"
        case .getMPState: return "KVM_GET_MP_STATE"
        case .setMPState: return "KVM_SET_MP_STATE"
        case .getVCPUEvents: return "KVM_GET_VCPU_EVENTS"
        case .setVCPUEvents: return "KVM_SET_VCPU_EVENTS"
        case .getMSRIndexList: return "KVM_GET_MSR_INDEX_LIST"
        case .getXSAVE: return "KVM_GET_XSAVE"
        case .getXSAVE2: return "KVM_GET_XSAVE2"
        case .setXSAVE: return "KVM_SET_XSAVE"
        case .getXCRs: return "KVM_GET_XCRS"
        case .setXCRs: return "KVM_SET_XCRS"
        case .getDebugRegisters: return "KVM_GET_DEBUGREGS"
        case .setDebugRegisters: return "KVM_SET_DEBUGREGS"
        case .getTSCKHz: return "KVM_GET_TSC_KHZ"
        case .setTSCKHz: return "KVM_SET_TSC_KHZ"
        case .getIRQChip(let chip): return "KVM_GET_IRQCHIP (chip \(chip))"
        case .setIRQChip(let chip): return "KVM_SET_IRQCHIP (chip \(chip))"
        case .getPIT: return "KVM_GET_PIT2"
        case .setPIT: return "KVM_SET_PIT2"
        case .getClock: return "KVM_GET_CLOCK"
        case .setClock: return "KVM_SET_CLOCK"
        case .getDirtyLog(let slot): return "KVM_GET_DIRTY_LOG (slot \(slot))"
        case .clearDirtyLog(let slot): return "KVM_CLEAR_DIRTY_LOG (slot \(slot))"
        case .enableCapability(let capability): return "KVM_ENABLE_CAP (capability \(capability))"
        case .ioEventFD(let address): return "KVM_IOEVENTFD (address \(GuestAddress(address)))"
        case .irqFD(let gsi): return "KVM_IRQFD (gsi \(gsi))"
        case .interrupt(let vector): return "KVM_INTERRUPT (vector \(hex(vector)))"
        case .nmi: return "KVM_NMI"
        }
    }
}

/// A failed KVM operation: which one, and why.
public enum KVMError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The ioctl (or `open`/`mmap`) failed with `errno`.
    case failed(KVMOperation, Errno)
    /// `/dev/kvm` speaks a different API version than the stable one (12).
    case unsupportedAPIVersion(Int32)
    /// A capability the VMM needs is missing.
    case missingCapability(String)
    /// KVM accepted fewer MSRs than asked (`KVM_GET_MSRS`/`KVM_SET_MSRS` return a count).
    case msrsRejected(index: UInt32, operation: KVMOperation)
    /// Saved state handed to `operation` has the wrong size for `field`: KVM
    /// would read (or write) past it, or silently ignore the rest, so it is
    /// refused before any ioctl.
    case stateSizeMismatch(field: String, expected: Int, actual: Int, operation: KVMOperation)
    /// KVM reported, or saved state holds, a value swiftvmm does not know for `field`.
    case unknownStateValue(field: String, value: UInt64, operation: KVMOperation)

    /// The operation that failed, if this error came from one.
    public var operation: KVMOperation? {
        if case .failed(let operation, _) = self { return operation }
        return nil
    }

    /// The errno, if this error came from a failed system call.
    public var errno: Errno? {
        if case .failed(_, let errno) = self { return errno }
        return nil
    }

    public var description: String {
        switch self {
        case .failed(.open(let path), let errno):
            let advice: String
            switch errno {
            case .noSuchFileOrDirectory:
                advice = "the kvm module is not loaded or this machine has no hardware virtualization (modprobe kvm_intel or kvm_amd)"
            case .permissionDenied:
                advice = "add your user to the kvm group or run as root"
            case .operationNotSupportedByDevice, .noSuchAddressOrDevice:
                advice = "the kernel has KVM but no usable back end (is virtualization enabled in the firmware?)"
            default: advice = "cannot use KVM"
            }
            return "cannot open \(path): \(errno) (\(Self.name(of: errno))); \(advice)"
        case .failed(let operation, let errno):
            return "\(operation) failed: \(errno) (\(Self.name(of: errno)))"
        case .unsupportedAPIVersion(let version):
            return "/dev/kvm reports API version \(version); swiftvmm needs the stable API, version 12"
        case .missingCapability(let name):
            return "KVM lacks a capability swiftvmm needs: \(name)"
        case .msrsRejected(let index, let operation):
            return "\(operation) rejected MSR \(hex(index))"
        case .stateSizeMismatch(let field, let expected, let actual, let operation):
            return "\(operation) not attempted: \(field) has \(actual) elements where KVM takes \(expected)"
        case .unknownStateValue(let field, let value, let operation):
            return "\(operation): unknown \(field) \(value)"
        }
    }

    static func name(of errno: Errno) -> String {
        switch errno {
        case .badFileDescriptor: return "EBADF"
        case .invalidArgument: return "EINVAL"
        case .noSuchFileOrDirectory: return "ENOENT"
        case .permissionDenied: return "EACCES"
        case .operationNotSupportedByDevice: return "ENODEV"
        case .noSuchAddressOrDevice: return "ENXIO"
        case .interrupted: return "EINTR"
        case .resourceTemporarilyUnavailable: return "EAGAIN"
        case .badAddress: return "EFAULT"
        case .fileExists: return "EEXIST"
        case .noMemory: return "ENOMEM"
        case .notPermitted: return "EPERM"
        case .notSupported: return "EOPNOTSUPP"
        case .tooManyOpenFiles: return "EMFILE"
        default: return "errno \(errno.rawValue)"
        }
    }
}

/// Turns a shim result (value or `-errno`) into a value or a thrown `KVMError`.
/// The one place the `-errno` convention of `CKVM` is decoded.
@inline(__always)
func check(_ result: Int32, _ operation: @autoclosure () -> KVMOperation) throws(KVMError) -> Int32 {
    if result < 0 { throw .failed(operation(), Errno(rawValue: -result)) }
    return result
}
