/// What a machine is made of, as plain values: enough to build the same
/// machine again in another process (a snapshot carries it).
public struct MachineHardware: Codable, Hashable, Sendable {
    /// Guest RAM in bytes.
    public var memorySize: UInt64
    public var vcpuCount: Int
    public var platform: MachineConfiguration.Platform
    /// The CPUID features hidden from the guest, by name (`CPUIDFeature.known`).
    public var hiddenCPUFeatures: [String]
    /// Whether QEMU's debug console answers at port 0xe9 (a restored machine
    /// has it too, writing where its `MachineIO` says, or nowhere).
    public var debugConsole: Bool
    /// Whether QEMU's test devices (`PCTestDevice`) are plugged in; `nil`
    /// (absent in snapshots from before they existed) means no.
    public var testDevices: Bool?
    /// The virtio devices, in the order of their MMIO windows; a restored
    /// machine opens the same files, taps and sockets again.
    public var virtioDevices: [VirtioDeviceConfiguration]
    /// Whether Firecracker's boot timer (`BootTimer`) takes the first MMIO
    /// window, the virtio devices' windows following it; `nil` (absent in
    /// snapshots from before it existed) means no.
    public var bootTimer: Bool?
    /// What guest RAM is made of when the machine builds it; `nil` (absent in
    /// snapshots from before it existed) means anonymous. A machine given its
    /// RAM (a restore, a migration) has what it was given.
    public var memoryBacking: MemoryBacking?

    public init(
        memorySize: UInt64, vcpuCount: Int, platform: MachineConfiguration.Platform, hiddenCPUFeatures: [String] = [],
        debugConsole: Bool = false, virtioDevices: [VirtioDeviceConfiguration] = [], testDevices: Bool = false,
        bootTimer: Bool = false, memoryBacking: MemoryBacking = .anonymous
    ) {
        self.memorySize = memorySize
        self.vcpuCount = vcpuCount
        self.platform = platform
        self.hiddenCPUFeatures = hiddenCPUFeatures
        self.debugConsole = debugConsole
        self.testDevices = testDevices ? true : nil
        self.virtioDevices = virtioDevices
        self.bootTimer = bootTimer ? true : nil
        self.memoryBacking = memoryBacking == .anonymous ? nil : memoryBacking
    }

    /// The hidden features as `CPUIDFeature`s; unknown names are an error
    /// (a snapshot from a newer swiftvmm, or a damaged one).
    func resolvedHiddenFeatures() throws(MachineError) -> [CPUIDFeature] {
        var features: [CPUIDFeature] = []
        for name in hiddenCPUFeatures {
            guard let feature = CPUIDFeature.named(name) else { throw .unknownCPUIDFeature(name) }
            features.append(feature)
        }
        return features
    }
}
