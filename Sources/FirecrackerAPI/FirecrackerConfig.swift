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
    /// The one place Firecracker's resources become swiftvmm's machine: each
    /// drive a `disk` (the root device first, as `/dev/vda`, with
    /// `root=/dev/vda ro|rw` or its PARTUUID on the kernel command line, as
    /// Firecracker does), each network interface a `net`, and `vsock`,
    /// `entropy` and `balloon` their devices. What swiftvmm's devices do not
    /// do (vhost-user drives, rate limiters) is refused naming the field.
    public func machineSpec() throws(APIFault) -> MachineSpec {
        try validate()
        var disks: [String] = []
        var rootArguments: String?
        let ordered = (drives ?? []).filter(\.isRootDevice) + (drives ?? []).filter { !$0.isRootDevice }
        for drive in ordered {
            let field = "drives[\(drive.driveId)]"
            if drive.socket != nil { throw APIFault("\(field).socket: vhost-user drives are not supported by swiftvmm; give path_on_host") }
            if drive.rateLimiter != nil { throw APIFault("\(field).rate_limiter: rate limiters are not supported by swiftvmm") }
            guard let path = drive.pathOnHost else { throw APIFault("\(field).path_on_host: missing") }
            // The disk option list is comma-separated; a comma cannot be escaped in it.
            if path.contains(",") { throw APIFault("\(field).path_on_host: '\(path)' contains a comma, which swiftvmm cannot pass on") }
            let readOnly = drive.isReadOnly ?? false
            disks.append("path=\(path),readonly=\(readOnly ? "on" : "off"),id=\(String(drive.driveId.utf8.prefix(20)) ?? drive.driveId)")
            if drive.isRootDevice {
                let root = drive.partuuid.map { "root=PARTUUID=\($0)" } ?? "root=/dev/vda"
                rootArguments = root + (readOnly ? " ro" : " rw")
            }
        }
        var nets: [String] = []
        for net in networkInterfaces ?? [] {
            let field = "network-interfaces[\(net.ifaceId)]"
            if net.rxRateLimiter != nil || net.txRateLimiter != nil {
                throw APIFault("\(field): rate limiters are not supported by swiftvmm")
            }
            nets.append("tap=\(net.hostDevName)" + (net.guestMac.map { ",mac=\($0)" } ?? ""))
        }
        if entropy?.rateLimiter != nil { throw APIFault("entropy.rate_limiter: rate limiters are not supported by swiftvmm") }

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
        if !disks.isEmpty { spec.disk = disks }
        if !nets.isEmpty { spec.net = nets }
        if let vsock { spec.vsock = "cid=\(vsock.guestCid),socket=\(vsock.udsPath)" }
        if entropy != nil { spec.rng = true }
        if balloon != nil { spec.balloon = true }
        if let rootArguments, spec.kernel != nil {
            spec.cmdline = [spec.cmdline, rootArguments].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
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
        for (index, device) in ((try? spec.resolve().virtioDevices) ?? []).enumerated() {
            switch device {
            case .block(let disk):
                let drive = Drive(
                    driveId: disk.identifier ?? "drive\(index)", isRootDevice: false, isReadOnly: disk.readOnly, pathOnHost: disk.path)
                drives = (drives ?? []) + [drive]
            case .network(let net):
                let mac = net.mac.map { $0.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":") }
                networkInterfaces =
                    (networkInterfaces ?? []) + [
                        NetworkInterface(ifaceId: "eth\(networkInterfaces?.count ?? 0)", hostDevName: net.tap, guestMac: mac)
                    ]
            case .vsock(let device): vsock = Vsock(guestCid: Int(device.cid), udsPath: device.socketPath)
            case .entropy: entropy = EntropyDevice()
            case .balloon: balloon = Balloon(amountMib: 0, deflateOnOom: false)
            case .console: break
            }
        }
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
