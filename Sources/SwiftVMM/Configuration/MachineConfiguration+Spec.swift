import Firmware
import Logging
import SwiftVMMConfig
import VMCore
import X86Boot

// From a MachineSpec to a MachineConfiguration: the one place that reads the
// files a spec names and decides what kind of guest they hold, so that the
// CLI, a config file and any other front end build the same machine and
// report the same errors.

extension MachineConfiguration {
    /// The machine `spec` describes: its values checked (`MachineSpec.resolve`),
    /// its guest, kernel, initrd and module files read, and its output files
    /// created or truncated.
    ///
    /// - Parameters:
    ///   - source: where the values came from; it decides how errors name a
    ///     field (`--memory` or `vm.json: memory`) and what relative paths are
    ///     relative to.
    ///   - logger: the machine's logger; `ResolvedSpec.logLevel` is the level the spec asks for.
    public init(spec: MachineSpec, source: SpecSource = .flags, logger: Logger) throws(SpecError) {
        try self.init(resolved: try spec.resolve(source: source), logger: logger)
    }

    /// The machine an already resolved spec describes; see `init(spec:source:logger:)`.
    public init(resolved: ResolvedSpec, logger: Logger) throws(SpecError) {
        self.init(
            guest: try resolved.makeGuest(), memorySize: resolved.memorySize, logger: logger,
            hiddenCPUFeatures: resolved.hiddenCPUFeatures, vcpuCount: resolved.vcpuCount)
        if let path = resolved.serial2Path { serial2Output = try resolved.outputFile(path, for: .serial2) }
        if let path = resolved.debugconPath { debugConsoleOutput = try resolved.outputFile(path, for: .debugcon) }
        virtioDevices = resolved.virtioDevices
    }
}

extension MachineSpec {
    /// The largest config file read: far more than every field needs, and
    /// small enough that naming a disk image by mistake fails at once.
    public static let maximumConfigFileSize: UInt64 = 1 << 20

    /// Reads the config file at `path` (JSON; see `init(json:file:)`). Errors
    /// name the file as `path` does.
    public init(contentsOfConfigFile path: String) throws(SpecError) {
        let bytes: [UInt8]
        do {
            bytes = try GuestFile.read(path, limit: Self.maximumConfigFileSize)
        } catch .tooLarge(let size, let limit) {
            throw SpecError("\(path): is \(size) bytes; a config file is at most \(limit) bytes")
        } catch {
            throw SpecError("\(path): \(error)")
        }
        try self.init(json: bytes, file: path)
    }
}

extension LogLevel {
    /// The swift-log level of the same name.
    public var loggerLevel: Logger.Level { Logger.Level(rawValue: rawValue) ?? .info }
}

extension ResolvedSpec {
    /// The usage error `error` from `Machine(_:)` is, when the spec is at
    /// fault: an image its boot protocol refuses (named as the guest or kernel
    /// field is), or more vCPUs than KVM allows. `nil` for failures of the host.
    public func usageError(for error: MachineError) -> SpecError? {
        switch error {
        case .boot:
            if let kernel = spec.kernel { return SpecError("\(source.subject(file: kernel, of: .kernel)): \(error)", field: .kernel) }
            if let guest = spec.guest { return SpecError("\(source.subject(file: guest, of: .guest)): \(error)", field: .guest) }
            return SpecError("demo guest: \(error)")
        case .invalidVCPUCount: return SpecError("\(source.name(.cpus)): \(error)", field: .cpus)
        case .virtioDevice(let device, let reason):
            let field: MachineSpec.Field
            switch device {
            case .block: field = .disk
            case .network: field = .net
            case .vsock: field = .vsock
            case .entropy: field = .rng
            case .balloon: field = .balloon
            case .console: field = .consoleDevice
            }
            return SpecError("\(source.name(field)): \(reason)", field: field)
        case .tooManyVirtioDevices: return SpecError("\(error)")
        default: return nil
        }
    }

    /// Reads the guest or kernel and decides how to load it.
    func makeGuest() throws(SpecError) -> MachineConfiguration.Guest {
        if let kernel = spec.kernel {
            let image = try read(kernel, field: .kernel)
            if GuestFile.isMultiboot(image) { return try makeMultiboot(kernel: kernel, image: image) }
            let initrdBytes = try spec.initrd.map { path throws(SpecError) in try read(path, field: .initrd) }
            return .linux(kernel: image, initrd: initrdBytes, commandLine: spec.cmdline ?? "console=ttyS0")
        }
        guard let guest = spec.guest else { return .firmware(FirmwareImage.demo) }
        let bytes = try read(guest, field: .guest)
        if GuestFile.isELF(bytes) {
            if loadAddress != nil || entry != nil || (mode != nil && mode != .long) {
                let names = [MachineSpec.Field.mode, .loadAddress, .entry].map { source.isFromFile($0) ? $0.rawValue : $0.flag }
                throw SpecError(
                    "\(source.subject(file: guest, of: .guest)): is an ELF executable, loaded by its program headers and entered in long mode at its entry point; \(names[0]), \(names[1]) and \(names[2]) apply to flat binaries only",
                    field: .guest)
            }
            return .elf(bytes: bytes)
        }
        return .flat(bytes: bytes, mode: mode ?? .real, loadAddress: loadAddress, entry: entry)
    }

    /// A Multiboot kernel: `initrd` lists its modules as QEMU's -initrd does
    /// (each module's command line is its whole item, file name included, as
    /// typed; the file is found as any other path of the field).
    func makeMultiboot(kernel: String, image: [UInt8]) throws(SpecError) -> MachineConfiguration.Guest {
        var modules: [MultibootModule] = []
        if let initrd = spec.initrd {
            let items: [CommandLineValue.ModuleItem]
            do { items = try CommandLineValue.parseModuleList(initrd) } catch {
                throw SpecError("\(source.name(.initrd)): \(error)", field: .initrd)
            }
            for item in items {
                // A module may be empty, as with QEMU.
                let bytes: [UInt8]
                do { bytes = try GuestFile.read(source.path(item.path, of: .initrd)) } catch {
                    throw SpecError("\(source.subject(file: item.path, of: .initrd)): \(error)", field: .initrd)
                }
                modules.append(MultibootModule(bytes: bytes, commandLine: item.commandLine))
            }
        }
        return .multiboot(kernel: image, name: kernel, modules: modules, commandLine: spec.cmdline ?? "")
    }

    /// The whole of a non-empty file named by `field`.
    func read(_ path: String, field: MachineSpec.Field) throws(SpecError) -> [UInt8] {
        let bytes: [UInt8]
        do { bytes = try GuestFile.read(source.path(path, of: field)) } catch {
            throw SpecError("\(source.subject(file: path, of: field)): \(error)", field: field)
        }
        if bytes.isEmpty { throw SpecError("\(source.subject(file: path, of: field)): the file is empty", field: field) }
        return bytes
    }

    /// A sink for `serial2` or `debugcon`, created or truncated.
    func outputFile(_ path: String, for field: MachineSpec.Field) throws(SpecError) -> FileSerialOutput {
        do { return try FileSerialOutput(path: path) } catch { throw SpecError("\(source.name(field)): \(error)", field: field) }
    }
}
