import ACPI
import Devices
import GuestMemory
import HostSupport
import KVM
import VMCore
import X86Boot

/// Why a machine could not be built or run.
public enum MachineError: Error, CustomStringConvertible {
    case kvm(KVMError)
    case memory(GuestMemoryError)
    case boot(BootError)
    case bus(BusError)
    case acpi(ACPIError)
    /// Guest RAM must be a whole number of pages and at least `minimum` bytes.
    case invalidMemorySize(UInt64, minimum: UInt64)
    case cannotOpenOutput(path: String, errno: Int32)
    /// The vCPU count is below 1 or above `maximum` (the smaller of
    /// `MachineConfiguration.maximumVCPUCount` and what KVM allows).
    case invalidVCPUCount(Int, maximum: Int)
    /// Several vCPUs need the PC platform: without local APICs nothing can start the others.
    case multipleVCPUsNeedPCPlatform(Int)
    case mpTable(MPTableError)
    /// A CPUID feature name no `CPUIDFeature` has (in a snapshot or specification).
    case unknownCPUIDFeature(String)
    /// A snapshot could not be written, read or restored.
    case snapshot(SnapshotError)
    /// A device refused the state it was given (from a snapshot).
    case deviceState(DeviceStateError)
    /// `reset(to:)` needs a machine with dirty-page tracking (a clone).
    case dirtyTrackingOff
    /// The operation needs every vCPU out of `KVM_RUN` (paused, or not running).
    case notQuiescent(operation: String)
    /// A virtio device could not be set up: its file, tap or socket (named in `reason`).
    case virtioDevice(VirtioDeviceConfiguration, reason: String)
    /// More virtio devices than the machine has interrupt lines for.
    case tooManyVirtioDevices(Int, maximum: Int)
    /// Virtio devices were asked of a machine without the PC platform's interrupt controllers.
    case virtioNeedsPCPlatform
    /// The virtio I/O thread or one of its eventfds could not be made.
    case virtioIO(EventLoopError)
    /// The operation exists only on another platform (an IRQ line needs the PC's interrupt controllers).
    case wrongPlatform(operation: String, needs: MachineConfiguration.Platform)
    /// There is no vCPU with this index (the machine has `count`).
    case noSuchVCPU(Int, count: Int)
    /// The guest-virtual address maps to nothing in the vCPU's page tables.
    case unmappedVirtualAddress(UInt64, vcpu: Int)
    /// The i8042's keyboard queue has no room for the keys (the guest is not reading them).
    case keyboardBufferFull(I8042Controller.KeyboardQueueFull)

    public var description: String {
        switch self {
        case .kvm(let error): return error.description
        case .memory(let error): return error.description
        case .boot(let error): return error.description
        case .bus(let error): return error.description
        case .acpi(let error): return "cannot build the ACPI tables: \(error)"
        case .invalidMemorySize(let size, let minimum):
            return "memory size \(size) bytes is invalid: it must be a multiple of 4096 and at least \(minimum) bytes"
        case .cannotOpenOutput(let path, let errno):
            return "cannot open \(path) for writing (errno \(errno))"
        case .invalidVCPUCount(let count, let maximum):
            return "vCPU count \(count) is invalid: it must be from 1 to \(maximum)"
        case .multipleVCPUsNeedPCPlatform(let count):
            return
                "\(count) vCPUs need the PC platform: the minimal platform has no local APICs, so nothing could start the other processors"
        case .mpTable(let error): return error.description
        case .unknownCPUIDFeature(let name): return "unknown CPUID feature '\(name)'"
        case .snapshot(let error): return error.description
        case .deviceState(let error): return "device state: \(error)"
        case .dirtyTrackingOff:
            return "this machine does not track the pages its guest writes: reset a clone made with Machine.clone(_:)"
        case .notQuiescent(let operation):
            return "cannot \(operation) while vCPUs are running: pause the machine first"
        case .virtioDevice(_, let reason): return reason
        case .tooManyVirtioDevices(let count, let maximum):
            return "\(count) virtio devices; a machine has interrupt lines for at most \(maximum)"
        case .virtioIO(let error): return "virtio I/O: \(error)"
        case .virtioNeedsPCPlatform: return "virtio devices need the PC platform (its interrupt controllers)"
        case .wrongPlatform(let operation, let platform):
            return "\(operation) needs the \(platform.rawValue) platform (MachineConfiguration.platform)"
        case .noSuchVCPU(let index, let count):
            return "there is no vCPU \(index): the machine has \(count) (0 to \(count - 1))"
        case .unmappedVirtualAddress(let address, let vcpu):
            return "guest-virtual address \(hex(address)) is not mapped in vCPU \(vcpu)'s page tables"
        case .keyboardBufferFull(let error): return error.description
        }
    }
}
