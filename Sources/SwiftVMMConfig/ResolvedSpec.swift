import VMCore

/// A `MachineSpec` whose every value has been checked and parsed, with the
/// defaults of absent fields filled in, as `swiftvmm run` has always checked
/// its flags. Reading the files it names (and deciding what kind of guest they
/// hold) is the next step, `MachineConfiguration(resolved:logger:)` in SwiftVMM.
public struct ResolvedSpec: Hashable, Sendable {
    /// The spec as given.
    public var spec: MachineSpec
    /// Where its values came from, for messages and relative paths.
    public var source: SpecSource
    /// The flat binary or ELF executable to boot, as the VMM opens it.
    public var guestPath: String?
    /// The kernel to boot, as the VMM opens it.
    public var kernelPath: String?
    /// `initrd` as given: a Linux initramfs or a Multiboot module list,
    /// which only the kernel's format decides.
    public var initrd: String?
    /// `cmdline` as given.
    public var commandLine: String?
    /// The mode a flat binary is entered in; `nil` means the default (real).
    public var mode: CPUMode?
    /// Where a flat binary is loaded; `nil` means the mode's default.
    public var loadAddress: UInt64?
    /// Where a flat binary is entered; `nil` means its load address.
    public var entry: UInt64?
    /// Guest RAM in bytes; `nil` means the default for the guest.
    public var memorySize: UInt64?
    /// The CPU features `cpuid_mask` hides.
    public var hiddenCPUFeatures: [CPUIDFeature]
    /// How many vCPUs (1 when not given).
    public var vcpuCount: Int
    /// How long the guest may run; `nil` means as long as it likes.
    public var timeout: Duration?
    /// The COM2 output file, as the VMM opens it.
    public var serial2Path: String?
    /// The debug-console output file, as the VMM opens it.
    public var debugconPath: String?
    /// What the VMM logs (`info` when not given).
    public var logLevel: LogLevel
    /// Whether to report exits, run time and peak RSS at the end.
    public var stats: Bool
    /// Where snapshots go, as the VMM opens it; `nil` means the current directory.
    public var snapshotDirectory: String?
    /// The virtio devices, in the order their windows and interrupts are given out.
    public var virtioDevices: [VirtioDeviceConfiguration] = []
    /// Where the GDB stub listens (`unix:PATH` or `tcp:HOST:PORT`), if anywhere.
    public var gdb: String?
    /// Whether the guest waits for the debugger before its first instruction.
    public var gdbWait = false
}

extension MachineSpec {
    /// Checks every value the way `swiftvmm run` checks its flags, in the
    /// same order and with the same words; `source` decides whether a message
    /// names `--memory` or `vm.json: memory`, and what relative paths are
    /// relative to. Files are not opened here.
    public func resolve(source: SpecSource = .flags) throws(SpecError) -> ResolvedSpec {
        let naming = Naming(spec: self, source: source)
        // Flags arrive as these types already (ArgumentParser checks them); a file's text is checked here.
        var cpuMode: CPUMode?
        if let mode {
            guard let parsed = CPUMode(rawValue: mode) else {
                throw naming.error(.mode, "'\(mode)' is not a CPU mode; expected 'real', 'protected' or 'long'")
            }
            cpuMode = parsed
        }
        var level = LogLevel.info
        if let logLevel {
            guard let parsed = LogLevel(rawValue: logLevel) else {
                let names = LogLevel.allCases.map(\.rawValue).joined(separator: ", ")
                throw naming.error(.logLevel, "'\(logLevel)' is not a log level; expected one of \(names)")
            }
            level = parsed
        }

        var memorySize: UInt64?
        if let memory {
            let size = try naming.parse(memory, .memory) { text throws(CommandLineValue.ParseError) in try CommandLineValue.parseSize(text)
            }
            if size < Self.minimumMemorySize { throw naming.error(.memory, "\(memory) is too small; the minimum is 1M") }
            memorySize = size
        }
        if kernel != nil, guest != nil {
            throw naming.sentence([.kernel, .guest], like: .kernel) { "\($0[0]) and \($0[1]) cannot be given together" }
        }
        if kernel == nil, initrd != nil { throw naming.sentence([.initrd, .kernel], like: .initrd) { "\($0[0]) needs \($0[1])" } }
        if kernel == nil, cmdline != nil { throw naming.sentence([.cmdline, .kernel], like: .cmdline) { "\($0[0]) needs \($0[1])" } }
        if kernel != nil, mode != nil || loadAddress != nil || entry != nil {
            throw naming.sentence([.mode, .loadAddress, .entry, .kernel], like: .kernel) {
                "\($0[0]), \($0[1]) and \($0[2]) apply to flat binaries; a \($0[3]) is entered as its boot protocol says"
            }
        }
        let hidden = try hiddenFeatures(naming)
        let vcpuCount = try vcpuCount(naming)
        let loadAddress = try self.loadAddress.map { text throws(SpecError) in
            try naming.parse(text, .loadAddress, CommandLineValue.parseAddress)
        }
        let entry = try self.entry.map { text throws(SpecError) in try naming.parse(text, .entry, CommandLineValue.parseAddress) }
        var duration: Duration?
        if let timeout {
            do { duration = try CommandLineValue.parseDuration(timeout) } catch { throw naming.error(.timeout, "\(error)") }
        }
        var serial2Path: String?
        if let serial2 {
            guard serial2.hasPrefix("file:"), serial2.count > 5 else {
                throw naming.error(.serial2, "'\(serial2)' is not file:PATH (COM2 can be sent to a file)")
            }
            serial2Path = source.path(String(serial2.dropFirst(5)), of: .serial2)
        }
        if debugcon?.isEmpty == true { throw naming.error(.debugcon, "the path is empty") }
        if snapshotDir?.isEmpty == true { throw naming.error(.snapshotDir, "the path is empty") }
        if let gdb, !Self.isGDBEndpoint(gdb) {
            throw naming.error(.gdb, "'\(gdb)' is not unix:PATH or tcp:HOST:PORT (a port from 0 to 65535)")
        }
        if gdbWait == true, gdb == nil { throw naming.sentence([.gdbWait, .gdb], like: .gdbWait) { "\($0[0]) needs \($0[1])" } }
        if kernel == nil, guest == nil, mode != nil || loadAddress != nil || entry != nil {
            throw naming.sentence([.mode, .loadAddress, .entry, .guest], like: .mode) {
                "\($0[0]), \($0[1]) and \($0[2]) need \($0[3]); the built-in demo guest chooses its own"
            }
        }
        let virtioDevices = try virtioDevices(source: source)
        var resolved = ResolvedSpec(
            spec: self, source: source, guestPath: guest.map { source.path($0, of: .guest) },
            kernelPath: kernel.map { source.path($0, of: .kernel) }, initrd: initrd, commandLine: cmdline, mode: cpuMode,
            loadAddress: loadAddress, entry: entry, memorySize: memorySize, hiddenCPUFeatures: hidden, vcpuCount: vcpuCount,
            timeout: duration, serial2Path: serial2Path, debugconPath: debugcon.map { source.path($0, of: .debugcon) }, logLevel: level,
            stats: stats ?? false, snapshotDirectory: snapshotDir.map { source.path($0, of: .snapshotDir) })
        resolved.virtioDevices = virtioDevices
        resolved.gdb = gdb
        resolved.gdbWait = gdbWait ?? false
        return resolved
    }

    /// `unix:PATH` (a path a socket address holds) or `tcp:HOST:PORT`.
    static func isGDBEndpoint(_ text: String) -> Bool {
        if text.hasPrefix("unix:") { return text.utf8.count > 5 && text.utf8.count - 5 < 108 }
        guard text.hasPrefix("tcp:"), let colon = text.lastIndex(of: ":"), colon > text.index(text.startIndex, offsetBy: 4) else {
            return false
        }
        return UInt16(text[text.index(after: colon)...]) != nil
    }

    /// Checks the spec; `resolve(source:)` without its result.
    public func validate(source: SpecSource = .flags) throws(SpecError) { _ = try resolve(source: source) }

    /// The features `cpuidMask` names.
    private func hiddenFeatures(_ naming: Naming) throws(SpecError) -> [CPUIDFeature] {
        var features: [CPUIDFeature] = []
        for name in cpuidMask ?? [] {
            guard let feature = CPUIDFeature.named(String(name.trimmingPrefix(while: { $0 == " " }))) else {
                throw naming.error(
                    .cpuidMask, "unknown feature '\(name)'; known: \(CPUIDFeature.known.map(\.name).joined(separator: ", "))")
            }
            features.append(feature)
        }
        return features
    }

    /// `cpus`, checked against the machine's limit (KVM may allow fewer; the machine says so).
    private func vcpuCount(_ naming: Naming) throws(SpecError) -> Int {
        guard let cpus else { return 1 }
        guard let count = Int(cpus), (1...Self.maximumVCPUCount).contains(count) else {
            throw naming.error(.cpus, "'\(cpus)' is not a vCPU count; expected a whole number from 1 to \(Self.maximumVCPUCount)")
        }
        return count
    }
}

/// How the messages of one `resolve` name fields.
private struct Naming {
    var spec: MachineSpec
    var source: SpecSource

    /// "`--memory`: detail" or "`vm.json: memory`: detail".
    func error(_ field: MachineSpec.Field, _ detail: String) -> SpecError {
        SpecError("\(source.name(field)): \(detail)", field: field)
    }

    func parse<T>(_ text: String, _ field: MachineSpec.Field, _ parser: (String) throws(CommandLineValue.ParseError) -> T)
        throws(SpecError) -> T
    {
        do { return try parser(text) } catch { throw self.error(field, "\(error)") }
    }

    /// A message about several fields: each is named as a flag (`--kernel`,
    /// "a GUEST file") or as a key (`kernel`, `guest`) by where it came from;
    /// an absent one as `reference` was. The message starts with the config
    /// file's name when any value in it came from the file.
    func sentence(_ fields: [MachineSpec.Field], like reference: MachineSpec.Field, _ text: ([String]) -> String) -> SpecError {
        func fromFile(_ field: MachineSpec.Field) -> Bool {
            source.isFromFile(spec.isGiven(field) ? field : reference)
        }
        let terms = fields.map { field in
            fromFile(field) ? field.rawValue : field == .guest ? "a GUEST file" : field.flag
        }
        let fileNamed = fields.contains { spec.isGiven($0) && source.isFromFile($0) }
        let prefix = fileNamed ? source.configFile.map { "\($0): " } ?? "" : ""
        return SpecError(prefix + text(terms), field: fields.first { spec.isGiven($0) })
    }
}
