/// A machine as a config file or `swiftvmm run`'s flags describe it: one
/// field for every flag, each holding the value as a user types it.
///
/// Values stay text (`"128M"`, `"0x7c00"`, `"30s"`) so that the flags, a config
/// file and any other front end go through the same parsers and get the same
/// errors; `resolve(source:)` checks them all and returns the parsed values.
/// A `nil` field means "not given": the flag's default applies.
///
/// As JSON (see `init(json:file:)`) the keys are the flags' names in snake
/// case (`load_address`, `cpuid_mask`), and absent fields are left out.
public struct MachineSpec: Hashable, Sendable {
    /// A flat binary or an ELF64 executable to boot (the CLI's `GUEST`); with
    /// neither this nor `kernel`, the built-in demo guest runs.
    public var guest: String?
    /// The CPU mode a flat binary is entered in: `real`, `protected` or `long`.
    public var mode: String?
    /// Where a flat binary is loaded: hex (`0x7c00`) or decimal.
    public var loadAddress: String?
    /// Where a flat binary is entered: hex or decimal.
    public var entry: String?
    /// Guest RAM: `64M`, `1G` or a number of bytes (whole 4 KiB pages, at least 1M).
    public var memory: String?
    /// A Linux bzImage, a PVH vmlinux or a Multiboot kernel to boot.
    public var kernel: String?
    /// A Linux kernel's initramfs, or a Multiboot kernel's module list
    /// (comma-separated `FILE [ARGS]` items, `,,` for a comma).
    public var initrd: String?
    /// The kernel command line.
    public var cmdline: String?
    /// CPU features to hide from the guest, by `CPUIDFeature` name.
    public var cpuidMask: [String]?
    /// How many vCPUs: a whole number from 1 to `maximumVCPUCount`.
    public var cpus: String?
    /// How long the guest may run: `500ms`, `30s`, `2m`, `1h`, or a number of seconds.
    public var timeout: String?
    /// Where COM2's output goes: `file:PATH`.
    public var serial2: String?
    /// The file the debug console (port 0xe9) writes to.
    public var debugcon: String?
    /// What the VMM logs: one of `LogLevel`'s names.
    public var logLevel: String?
    /// Whether to report exits, run time and peak RSS at the end.
    public var stats: Bool?
    /// The directory Ctrl-A s writes machine snapshots to.
    public var snapshotDir: String?
    /// virtio-blk disks, each `path=FILE[,readonly=on][,direct=on][,id=ID]`.
    public var disk: [String]?
    /// virtio-net interfaces, each `tap=NAME[,mac=MAC]`.
    public var net: [String]?
    /// A virtio-vsock device: `cid=N,socket=PATH`.
    public var vsock: String?
    /// Whether the machine has a virtio-rng device.
    public var rng: Bool?
    /// Whether the machine has a virtio-balloon device.
    public var balloon: Bool?
    /// A virtio console (`hvc0`): `socket:PATH` or `file:PATH`.
    public var consoleDevice: String?
    /// Where the GDB stub listens: `unix:PATH` or `tcp:HOST:PORT`.
    public var gdb: String?
    /// Whether the guest waits for the debugger to continue before its first instruction.
    public var gdbWait: Bool?

    /// A spec with the given fields; every other field is absent.
    public init(
        guest: String? = nil, mode: String? = nil, loadAddress: String? = nil, entry: String? = nil, memory: String? = nil,
        kernel: String? = nil, initrd: String? = nil, cmdline: String? = nil, cpuidMask: [String]? = nil, cpus: String? = nil,
        timeout: String? = nil, serial2: String? = nil, debugcon: String? = nil, logLevel: String? = nil, stats: Bool? = nil,
        snapshotDir: String? = nil, disk: [String]? = nil, net: [String]? = nil, vsock: String? = nil, rng: Bool? = nil,
        balloon: Bool? = nil, consoleDevice: String? = nil, gdb: String? = nil, gdbWait: Bool? = nil
    ) {
        self.guest = guest
        self.mode = mode
        self.loadAddress = loadAddress
        self.entry = entry
        self.memory = memory
        self.kernel = kernel
        self.initrd = initrd
        self.cmdline = cmdline
        self.cpuidMask = cpuidMask
        self.cpus = cpus
        self.timeout = timeout
        self.serial2 = serial2
        self.debugcon = debugcon
        self.logLevel = logLevel
        self.stats = stats
        self.snapshotDir = snapshotDir
        self.disk = disk
        self.net = net
        self.vsock = vsock
        self.rng = rng
        self.balloon = balloon
        self.consoleDevice = consoleDevice
        self.gdb = gdb
        self.gdbWait = gdbWait
    }

    /// The most vCPUs a machine may have (unless KVM allows fewer): xAPIC ids
    /// are 8 bits wide, 0xff is the broadcast id, and the MADT and MP table
    /// list processors by their xAPIC id.
    public static let maximumVCPUCount = 255

    /// Below 1 MiB a PC memory map (and the VMM's own structures) makes no sense.
    public static let minimumMemorySize: UInt64 = 1 << 20
}

extension MachineSpec {
    /// One field of a spec. The raw value is its JSON key.
    public enum Field: String, CaseIterable, Hashable, Sendable, CodingKey {
        case guest, mode
        case loadAddress = "load_address"
        case entry, memory, kernel, initrd, cmdline
        case cpuidMask = "cpuid_mask"
        case cpus, timeout, serial2, debugcon
        case logLevel = "log_level"
        case stats
        case snapshotDir = "snapshot_dir"
        case disk, net, vsock, rng, balloon
        case consoleDevice = "console_device"
        case gdb
        case gdbWait = "gdb_wait"

        /// How the command line names the field: `--load-address`, or `GUEST`
        /// for the positional argument.
        public var flag: String {
            self == .guest ? "GUEST" : "--" + rawValue.replacing("_", with: "-")
        }
    }

    /// The fields that are given (not `nil`).
    public var givenFields: Set<Field> {
        var fields: Set<Field> = []
        for field in Field.allCases where isGiven(field) { fields.insert(field) }
        return fields
    }

    /// Whether `field` is given.
    public func isGiven(_ field: Field) -> Bool {
        switch field {
        case .guest: guest != nil
        case .mode: mode != nil
        case .loadAddress: loadAddress != nil
        case .entry: entry != nil
        case .memory: memory != nil
        case .kernel: kernel != nil
        case .initrd: initrd != nil
        case .cmdline: cmdline != nil
        case .cpuidMask: cpuidMask != nil
        case .cpus: cpus != nil
        case .timeout: timeout != nil
        case .serial2: serial2 != nil
        case .debugcon: debugcon != nil
        case .logLevel: logLevel != nil
        case .stats: stats != nil
        case .snapshotDir: snapshotDir != nil
        case .disk: disk != nil
        case .net: net != nil
        case .vsock: vsock != nil
        case .rng: rng != nil
        case .balloon: balloon != nil
        case .consoleDevice: consoleDevice != nil
        case .gdb: gdb != nil
        case .gdbWait: gdbWait != nil
        }
    }

    /// This spec with every field `other` gives taken from `other`: how flags
    /// on the command line override a config file's fields.
    public func overridden(by other: MachineSpec) -> MachineSpec {
        MachineSpec(
            guest: other.guest ?? guest, mode: other.mode ?? mode, loadAddress: other.loadAddress ?? loadAddress,
            entry: other.entry ?? entry, memory: other.memory ?? memory, kernel: other.kernel ?? kernel, initrd: other.initrd ?? initrd,
            cmdline: other.cmdline ?? cmdline, cpuidMask: other.cpuidMask ?? cpuidMask, cpus: other.cpus ?? cpus,
            timeout: other.timeout ?? timeout, serial2: other.serial2 ?? serial2, debugcon: other.debugcon ?? debugcon,
            logLevel: other.logLevel ?? logLevel, stats: other.stats ?? stats, snapshotDir: other.snapshotDir ?? snapshotDir,
            disk: other.disk ?? disk, net: other.net ?? net, vsock: other.vsock ?? vsock, rng: other.rng ?? rng,
            balloon: other.balloon ?? balloon, consoleDevice: other.consoleDevice ?? consoleDevice,
            gdb: other.gdb ?? gdb, gdbWait: other.gdbWait ?? gdbWait)
    }
}

/// What the VMM logs on stderr, by swift-log's level names (this module does
/// not depend on swift-log; SwiftVMM maps a level to `Logger.Level`).
public enum LogLevel: String, CaseIterable, Hashable, Sendable {
    case trace, debug, info, notice, warning, error, critical
}

/// A value in a spec that is wrong: one line that names the field the way the
/// user gave it (`--memory` on the command line, `vm.json: memory` in a file)
/// and says what was expected.
public struct SpecError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The field at fault, when there is one (malformed JSON has none).
    public var field: MachineSpec.Field?
    /// The whole message, naming the flag, file or field.
    public var description: String

    /// An error whose message is `description`.
    public init(_ description: String, field: MachineSpec.Field? = nil) {
        self.description = description
        self.field = field
    }
}

/// Where each value of a spec came from: the command line, or a config file
/// (with some fields overridden by flags). It decides how an error names a
/// field, and what a relative path in the value is relative to.
public struct SpecSource: Hashable, Sendable {
    /// The config file as the user named it, if there is one.
    public var configFile: String?
    /// The fields given as flags; with a config file, they won over its values.
    public var flagFields: Set<MachineSpec.Field>

    /// Every value came from the command line.
    public static let flags = SpecSource(configFile: nil, flagFields: Set(MachineSpec.Field.allCases))

    /// Values from the config file at `path`, except `flagFields`, which came from flags.
    public static func configFile(_ path: String, overriddenByFlags flagFields: Set<MachineSpec.Field> = []) -> SpecSource {
        SpecSource(configFile: path, flagFields: flagFields)
    }

    /// A source; see `flags` and `configFile(_:overriddenByFlags:)`.
    public init(configFile: String?, flagFields: Set<MachineSpec.Field>) {
        self.configFile = configFile
        self.flagFields = flagFields
    }

    /// Whether `field`'s value came from the config file.
    public func isFromFile(_ field: MachineSpec.Field) -> Bool { configFile != nil && !flagFields.contains(field) }

    /// How an error names `field`: `--memory`, or `vm.json: memory`.
    public func name(_ field: MachineSpec.Field) -> String {
        if let configFile, isFromFile(field) { return "\(configFile): \(field.rawValue)" }
        return field.flag
    }

    /// The file `path` (the value of `field`) names, as the VMM opens it: a
    /// relative path from a config file is relative to the file's directory;
    /// one from the command line, to the current directory.
    public func path(_ path: String, of field: MachineSpec.Field) -> String {
        guard isFromFile(field), !path.isEmpty, !path.hasPrefix("/"), let directory = configDirectory else { return path }
        return directory.hasSuffix("/") ? directory + path : directory + "/" + path
    }

    /// How an error about the file at `path` (the value of `field`) starts:
    /// the path itself for a flag (as the CLI always said), the config file
    /// and field followed by the path opened for a config file.
    public func subject(file path: String, of field: MachineSpec.Field) -> String {
        if let configFile, isFromFile(field) { return "\(configFile): \(field.rawValue): \(self.path(path, of: field))" }
        return path
    }

    /// The directory part of `configFile`, or `nil` when it is in the current directory.
    var configDirectory: String? {
        guard let configFile, let slash = configFile.lastIndex(of: "/") else { return nil }
        return slash == configFile.startIndex ? "/" : String(configFile[..<slash])
    }
}
