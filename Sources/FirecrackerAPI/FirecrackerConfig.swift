import SwiftVMMConfig

/// Firecracker's configuration file (`--config-file`), and the resources set
/// through the API before `InstanceStart`: the API's resources under their
/// path names, plus swiftvmm's `"x-swiftvmm"` extras.
///
/// `machineSpec()` is the one mapping onto `MachineSpec`, which stays the
/// machine's single source of truth; `init(spec:)` maps back.
public struct FirecrackerConfig: StrictResource, Hashable {
    public var bootSource: BootSource?
    public var machineConfig: MachineConfig?
    public var drives: [Drive]?
    public var networkInterfaces: [NetworkInterface]?
    public var vsock: Vsock?
    public var balloon: Balloon?
    public var entropy: EntropyDevice?
    public var logger: LoggerConfig?
    public var metrics: MetricsConfig?
    public var extras: SwiftVMMExtras?

    public init() {}

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case bootSource = "boot-source"
        case machineConfig = "machine-config"
        case drives
        case networkInterfaces = "network-interfaces"
        case vsock, balloon, entropy, logger, metrics
        case extras = "x-swiftvmm"
    }
    public static var nestedResources: [String: any StrictResource.Type] {
        [
            "boot-source": BootSource.self, "machine-config": MachineConfig.self, "drives": Drive.self,
            "network-interfaces": NetworkInterface.self, "vsock": Vsock.self, "balloon": Balloon.self, "entropy": EntropyDevice.self,
            "logger": LoggerConfig.self, "metrics": MetricsConfig.self, "x-swiftvmm": SwiftVMMExtras.self,
        ]
    }

    public func validate() throws(APIFault) {
        func named<T>(_ key: String, _ body: () throws(APIFault) -> T) throws(APIFault) -> T {
            do { return try body() } catch { throw APIFault(status: error.status, "\(key).\(error.message)") }
        }
        try named("boot-source") { () throws(APIFault) in try bootSource?.validate() }
        try named("machine-config") { () throws(APIFault) in try machineConfig?.validate() }
        for (index, drive) in (drives ?? []).enumerated() { try named("drives[\(index)]") { () throws(APIFault) in try drive.validate() } }
        for (index, net) in (networkInterfaces ?? []).enumerated() {
            try named("network-interfaces[\(index)]") { () throws(APIFault) in try net.validate() }
        }
        try named("vsock") { () throws(APIFault) in try vsock?.validate() }
        try named("balloon") { () throws(APIFault) in try balloon?.validate() }
        try named("entropy") { () throws(APIFault) in try entropy?.validate() }
        try named("logger") { () throws(APIFault) in try logger?.validate() }
        try named("metrics") { () throws(APIFault) in try metrics?.validate() }
        try named(Self.CodingKeys.extras.rawValue) { () throws(APIFault) in try extras?.validate() }
    }

    /// The machine this configuration describes, as a `MachineSpec`.
    ///
    /// The one place Firecracker's resources become swiftvmm's machine: the
    /// virtio devices (`drives`, `network-interfaces`, `vsock`, `entropy`,
    /// `balloon`) are refused here, with a fault naming the resource, until
    /// `MachineSpec` has fields for them.
    public func machineSpec() throws(APIFault) -> MachineSpec {
        try validate()
        if let drive = drives?.first { throw .deviceNotAvailable("drives[\(drive.driveId)]", device: "virtio-block") }
        if let net = networkInterfaces?.first {
            throw .deviceNotAvailable("network-interfaces[\(net.ifaceId)]", device: "virtio-net")
        }
        if vsock != nil { throw .deviceNotAvailable("vsock", device: "virtio-vsock") }
        if entropy != nil { throw .deviceNotAvailable("entropy", device: "virtio-rng") }
        if balloon != nil { throw .deviceNotAvailable("balloon", device: "virtio-balloon") }

        let extras = extras ?? SwiftVMMExtras()
        var spec = MachineSpec()
        if let bootSource {
            if extras.guest != nil { throw APIFault("x-swiftvmm.guest: cannot be given with boot-source; boot one or the other") }
            spec.kernel = bootSource.kernelImagePath
            spec.cmdline = bootSource.bootArgs
            spec.initrd = bootSource.initrdPath
            if let modules = extras.modules {
                if bootSource.initrdPath != nil { throw APIFault("x-swiftvmm.modules: cannot be given with boot-source.initrd_path") }
                spec.initrd = modules
            }
        } else {
            guard let guest = extras.guest else {
                throw APIFault("boot-source: missing; give a kernel_image_path (or x-swiftvmm.guest for a flat binary)")
            }
            if extras.modules != nil { throw APIFault("x-swiftvmm.modules: needs a Multiboot kernel in boot-source") }
            spec.guest = guest
        }
        spec.mode = extras.mode
        spec.loadAddress = extras.loadAddress
        spec.entry = extras.entry
        spec.cpuidMask = extras.cpuidMask
        spec.serial2 = extras.serial2
        spec.debugcon = extras.debugcon
        if let machineConfig {
            spec.cpus = String(machineConfig.vcpuCount)
            spec.memory = "\(machineConfig.memSizeMib)M"
        }
        return spec
    }

    /// The configuration that describes `spec` (`GET /vm/config`).
    public init(spec: MachineSpec, trackDirtyPages: Bool = false) {
        if let kernel = spec.kernel { bootSource = BootSource(kernelImagePath: kernel, initrdPath: spec.initrd, bootArgs: spec.cmdline) }
        var extras = SwiftVMMExtras()
        extras.guest = spec.guest
        extras.mode = spec.mode
        extras.loadAddress = spec.loadAddress
        extras.entry = spec.entry
        extras.cpuidMask = spec.cpuidMask
        extras.serial2 = spec.serial2
        extras.debugcon = spec.debugcon
        if !extras.isEmpty { self.extras = extras }
        let memory = spec.memory.flatMap { try? CommandLineValue.parseSize($0) } ?? (128 << 20)
        machineConfig = MachineConfig(
            vcpuCount: spec.cpus.flatMap { Int($0) } ?? 1, memSizeMib: Int(memory >> 20), smt: false, trackDirtyPages: trackDirtyPages)
    }

    /// Names a `SpecError`'s flag the way this format names the field.
    public static func apiFieldName(_ field: MachineSpec.Field) -> String {
        switch field {
        case .kernel: "boot-source.kernel_image_path"
        case .initrd: "boot-source.initrd_path"
        case .cmdline: "boot-source.boot_args"
        case .memory: "machine-config.mem_size_mib"
        case .cpus: "machine-config.vcpu_count"
        default: "x-swiftvmm." + field.rawValue
        }
    }

    /// `error`'s message with its flag names replaced by this format's field names.
    public static func fault(from error: SpecError) -> APIFault {
        var message = error.description
        for field in MachineSpec.Field.allCases.sorted(by: { $0.flag.count > $1.flag.count }) {
            message = message.replacing(field.flag, with: apiFieldName(field))
        }
        // Errors about a file name the file only; the API names the field too.
        if let field = error.field, !message.contains(apiFieldName(field)) { message = apiFieldName(field) + ": " + message }
        return APIFault(message)
    }
}
