import Devices
import KVM
import SwiftVMMConfig
import VMCore
import Virtio

/// Everything a machine is at one instant apart from its RAM, as plain
/// values: what the state file of a snapshot holds (as JSON), and what an
/// in-memory `MachineImage` carries beside its memory.
///
/// Plain `Codable` values all the way down: no closures, no existentials.
/// Restoring validates every part (here, in KVM's wrappers and in each
/// device's `restore`) before it reaches KVM or a device.
public struct MachineSnapshot: Codable, Sendable {
    /// What the machine is made of: RAM size, vCPUs, platform, hidden CPUID features.
    public var hardware: MachineHardware
    /// How the guest was booted (image, mode, firmware tables, fw_cfg contents).
    var boot: BootRecord
    /// The guest-physical RAM ranges, in the order the memory file holds them.
    public var memoryRegions: [MemoryRegion]
    /// The in-kernel interrupt controllers, PIT and clock.
    public var vm: VMState
    /// Each vCPU's state, vCPU 0 first.
    public var vcpus: [VCPUState]
    /// Each device's state.
    public var devices: DeviceStates
    /// The specification the machine was built from (a config file's
    /// contents, or the flags), when it was built from one.
    public var specification: MachineSpec?

    /// One range of guest RAM.
    public struct MemoryRegion: Codable, Hashable, Sendable {
        public var base: UInt64
        public var size: UInt64
    }

    /// The state of every device a machine has.
    public struct DeviceStates: Codable, Sendable {
        public var com1: Serial16550.State
        public var com2: Serial16550.State
        public var postCode: PostCodePort.State
        /// The PC platform's devices; absent on the minimal platform.
        public var i8042: I8042Controller.State?
        public var rtc: CMOSRTC.State?
        public var pciConfig: PCIConfigSpaceStub.State?
        public var acpiSleep: ACPISleepControl.State?
        /// The PM1a blocks; absent in snapshots taken before swiftvmm had them.
        public var acpiPM1: ACPIPM1Registers.State?
        public var firmwareConfig: FirmwareConfig.State?
        /// The virtio transports, in the order of `MachineHardware.virtioDevices`.
        public var virtio: [VirtioMMIOTransport.State]?
        /// The virtio devices' own state, in the same order.
        public var virtioDevices: [VirtioDeviceState]?
    }

    /// Checks that the parts agree with each other before anything is built from them.
    func validate() throws(SnapshotError) {
        guard vcpus.count == hardware.vcpuCount else {
            throw .inconsistent("\(vcpus.count) vCPU states for a machine of \(hardware.vcpuCount) vCPUs")
        }
        let expected = PlatformSetup.ramLayout(size: hardware.memorySize, platform: hardware.platform).map {
            MemoryRegion(base: $0.base.rawValue, size: $0.size)
        }
        guard memoryRegions == expected else {
            throw .inconsistent(
                "the RAM layout \(memoryRegions) is not that of \(hardware.memorySize) bytes on the \(hardware.platform) platform")
        }
        let virtioCount = devices.virtio?.count ?? 0
        guard virtioCount == hardware.virtioDevices.count, (devices.virtioDevices?.count ?? 0) == virtioCount else {
            throw .inconsistent("\(virtioCount) virtio device states for a machine of \(hardware.virtioDevices.count) virtio devices")
        }
        let pc = hardware.platform == .pc
        let pcStates: [Bool] = [devices.i8042 != nil, devices.rtc != nil, devices.pciConfig != nil, devices.acpiSleep != nil]
        guard pcStates.allSatisfy({ $0 == pc }) else {
            throw .inconsistent("the device states do not match the \(hardware.platform) platform")
        }
        guard (devices.firmwareConfig != nil) == (boot.firmwareConfig != nil) else {
            throw .inconsistent("the fw_cfg state and contents must come together")
        }
    }
}
