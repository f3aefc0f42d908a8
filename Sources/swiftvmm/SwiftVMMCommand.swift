import ArgumentParser
import Firmware
import Logging
import SwiftVMM
import VMCore
import VMMConsole
import X86Boot

#if canImport(Glibc)
    import Glibc
#endif

@main
struct SwiftVMMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftvmm",
        abstract: "A small, fast, honest virtual machine monitor on Linux KVM.",
        subcommands: [Run.self],
        defaultSubcommand: Run.self)
}

extension CPUMode: ExpressibleByArgument {}

/// An address typed as hex (`0x7c00`) or decimal.
struct AddressArgument: ExpressibleByArgument {
    var value: UInt64
    init?(argument: String) {
        guard let value = try? CommandLineValue.parseAddress(argument) else { return nil }
        self.value = value
    }
    static var defaultCompletionKind: CompletionKind { .default }
}

/// A size typed as `64M`, `1G` or bytes.
struct SizeArgument: ExpressibleByArgument {
    var text: String
    init?(argument: String) { text = argument }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Boot a guest: a flat binary, an ELF64 executable, or (with no GUEST) the built-in demo.",
        discussion: """
            Exit status: the byte the guest wrote to the debug-exit port (0xf4); 0 if it halted \
            with interrupts disabled; 1 if it crashed (triple fault, internal error, failed entry) \
            or KVM failed, or outlived --timeout; 64 for a bad option or guest file.
            """)

    @Option(help: "The CPU mode a flat binary is entered in: real, protected or long.")
    var mode: CPUMode?

    @Option(
        help: ArgumentHelp(
            "Where a flat binary is loaded (hex 0x... or decimal). Default: 0x7c00 in real mode, 0x100000 otherwise.", valueName: "addr"))
    var loadAddress: String?

    @Option(help: ArgumentHelp("Where execution starts. Default: the load address.", valueName: "addr"))
    var entry: String?

    @Option(
        help: ArgumentHelp(
            "Guest RAM: 64M, 1G, or a number of bytes (whole 4 KiB pages). Default: 128M, or 256M with a Linux --kernel.", valueName: "size"
        ))
    var memory: String?

    @Option(
        help: ArgumentHelp(
            "A kernel to boot: a Linux bzImage, a Multiboot kernel, or an ELF vmlinux with a PVH entry note.", valueName: "image"))
    var kernel: String?

    @Option(
        help: ArgumentHelp(
            "An initramfs for a Linux --kernel; for a Multiboot kernel, its modules: comma-separated, each 'FILE [ARGS]' (',,' for a comma).",
            valueName: "file"))
    var initrd: String?

    @Option(help: ArgumentHelp("The kernel command line for --kernel.", valueName: "text"))
    var cmdline: String?

    @Option(
        help: ArgumentHelp(
            "CPU features to hide from the guest, comma-separated (e.g. xsave,cx16); see CPUIDFeature.known.", valueName: "features"))
    var cpuidMask: String?

    @Option(
        help: ArgumentHelp(
            "How many vCPUs (default 1). More than one gives the guest the PC platform; vCPU 0 boots, the guest starts the others with INIT and SIPI.",
            valueName: "n"))
    var cpus: String?

    @Option(
        help: ArgumentHelp(
            "Stop the guest if it is still running after this long (500ms, 30s, 2m; a bare number is seconds).", valueName: "duration"))
    var timeout: String?

    @Option(help: ArgumentHelp("Send COM2 (0x2f8) to a file, created or truncated.", valueName: "file:path"))
    var serial2: String?

    @Option(help: ArgumentHelp("Send the debug console (port 0xe9, QEMU's debugcon) to a file, created or truncated.", valueName: "path"))
    var debugcon: String?

    @Option(help: "What the VMM logs on stderr: trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    @Flag(help: "Print the number of VM exits, the time the guest ran and the VMM's peak RSS on stderr at the end.")
    var stats = false

    @Argument(help: "The guest image. Omit it to boot the built-in demo guest.")
    var guest: String?

    func validate() throws {
        if let memoryBytes = try memoryBytes(), memoryBytes < MachineConfiguration.minimumMemorySize {
            throw ValidationError("--memory: \(memory ?? "") is too small; the minimum is 1M")
        }
        if kernel != nil, guest != nil { throw ValidationError("--kernel and a GUEST file cannot be given together") }
        if kernel == nil, initrd != nil { throw ValidationError("--initrd needs --kernel") }
        if kernel == nil, cmdline != nil { throw ValidationError("--cmdline needs --kernel") }
        if kernel != nil, mode != nil || loadAddress != nil || entry != nil {
            throw ValidationError(
                "--mode, --load-address and --entry apply to flat binaries; a --kernel is entered as its boot protocol says")
        }
        _ = try hiddenFeatures()
        _ = try vcpuCount()
        if let loadAddress { _ = try Self.parse(loadAddress, as: "--load-address", CommandLineValue.parseAddress) }
        if let entry { _ = try Self.parse(entry, as: "--entry", CommandLineValue.parseAddress) }
        if let timeout {
            do { _ = try CommandLineValue.parseDuration(timeout) } catch { throw ValidationError("--timeout: \(error)") }
        }
        _ = try serial2Path()
        if debugcon?.isEmpty == true { throw ValidationError("--debugcon: the path is empty") }
    }

    /// The file named by --serial2 `file:PATH`.
    func serial2Path() throws -> String? {
        guard let serial2 else { return nil }
        guard serial2.hasPrefix("file:"), serial2.count > 5 else {
            throw ValidationError("--serial2: '\(serial2)' is not file:PATH (COM2 can be sent to a file)")
        }
        return String(serial2.dropFirst(5))
    }

    /// A sink for --serial2 or --debugcon.
    static func outputFile(_ path: String, for option: String) throws -> FileSerialOutput {
        do { return try FileSerialOutput(path: path) } catch { throw ValidationError("\(option): \(error)") }
    }

    /// --cpus, checked against the machine's limit (KVM may allow fewer; the machine says so).
    func vcpuCount() throws -> Int {
        guard let cpus else { return 1 }
        let maximum = MachineConfiguration.maximumVCPUCount
        guard let count = Int(cpus), (1...maximum).contains(count) else {
            throw ValidationError("--cpus: '\(cpus)' is not a vCPU count; expected a whole number from 1 to \(maximum)")
        }
        return count
    }

    /// --memory in bytes, or nil for the default.
    func memoryBytes() throws -> UInt64? {
        guard let memory else { return nil }
        return try Self.parse(memory, as: "--memory") { text throws(CommandLineValue.ParseError) in try CommandLineValue.parseSize(text) }
    }

    static func parse(_ text: String, as option: String, _ parser: (String) throws(CommandLineValue.ParseError) -> UInt64) throws -> UInt64
    {
        do { return try parser(text) } catch { throw ValidationError("\(option): \(error)") }
    }

    func run() throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .trace
            return handler
        }
        var logger = Logger(label: "swiftvmm")
        logger.logLevel = logLevel

        let machine = try makeMachine(logger: logger)
        // The console: keystrokes (or piped input) go to COM1. A terminal is
        // put in raw mode, with Ctrl-A x to quit, and restored on every way out.
        let interactive = Terminal.isTerminal(STDIN_FILENO)
        var terminal: Terminal?
        if interactive {
            do { terminal = try Terminal.makeRaw(STDIN_FILENO) } catch {
                Self.report("warning: the terminal stays in cooked mode: \(error)")
            }
        }
        let remote = machine.remote
        var console: ConsoleInput?
        do {
            console = try ConsoleInput(
                fileDescriptor: STDIN_FILENO, mode: interactive ? .terminal : .passthrough,
                onInput: { remote.kick() }, onQuit: { remote.requestStop() },
                onHelp: { Self.writeToStandardError(ConsoleEscape.helpText) })
        } catch {
            Self.report("warning: console input unavailable: \(error)")
        }
        machine.serialInput = console
        defer {
            console?.stop()
            terminal?.restore()
        }

        let reason: StopReason
        let start = ContinuousClock.now
        defer {
            if stats {
                let elapsed = ContinuousClock.now - start
                let milliseconds = Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) / 1e15
                let rss = ProcessStatistics.peakResidentSetKiB().map { "\($0) KiB" } ?? "unknown"
                Self.report("stats: \(machine.exitCount) exits, guest ran \((milliseconds * 10).rounded() / 10) ms, peak RSS \(rss)")
            }
        }
        do {
            reason = try machine.runOnVCPUThread(timeout: timeout.flatMap { try? CommandLineValue.parseDuration($0) })
        } catch {
            console?.stop()
            terminal?.restore()
            Self.report("error: \(error)")
            Self.report(machine.cpuStateReport())
            throw ExitCode(1)
        }
        console?.stop()
        terminal?.restore()
        // Ctrl-A x usually lands mid-line on the guest's output.
        if interactive, reason == .stopRequested { Self.writeToStandardError("\n") }
        Self.report(reason.description)
        if reason.isFailure { Self.report(machine.cpuStateReport()) }
        throw ExitCode(reason.exitStatus)
    }

    /// Reads the guest and builds the machine. The file's bytes live only in
    /// here: once they are in guest memory the VMM does not keep a second copy
    /// (a 66 MB vmlinux would otherwise stay resident for the whole run).
    func makeMachine(logger: Logger) throws -> Machine {
        var configuration = MachineConfiguration(
            guest: try makeGuest(), memorySize: try memoryBytes(), logger: logger, hiddenCPUFeatures: try hiddenFeatures(),
            vcpuCount: try vcpuCount())
        configuration.serial2Output = try serial2Path().map { try Self.outputFile($0, for: "--serial2") }
        configuration.debugConsoleOutput = try debugcon.map { try Self.outputFile($0, for: "--debugcon") }
        do {
            return try Machine(configuration)
        } catch {
            if case .boot = error { throw ValidationError("\(kernel ?? guest ?? "demo guest"): \(error)") }
            if case .invalidVCPUCount = error { throw ValidationError("--cpus: \(error)") }
            Self.report("error: \(error)")
            throw ExitCode(1)
        }
    }

    /// The features named by --cpuid-mask.
    func hiddenFeatures() throws -> [CPUIDFeature] {
        guard let cpuidMask else { return [] }
        return try cpuidMask.split(separator: ",").map { name in
            guard let feature = CPUIDFeature.named(String(name.trimmingPrefix(while: { $0 == " " }))) else {
                throw ValidationError(
                    "--cpuid-mask: unknown feature '\(name)'; known: \(CPUIDFeature.known.map(\.name).joined(separator: ", "))")
            }
            return feature
        }
    }

    /// Reads the guest file and decides how to load it.
    func makeGuest() throws -> MachineConfiguration.Guest {
        if let kernel {
            let image: [UInt8]
            do { image = try GuestFile.read(kernel) } catch { throw ValidationError("\(kernel): \(error)") }
            if image.isEmpty { throw ValidationError("\(kernel): the file is empty") }
            if GuestFile.isMultiboot(image) { return try makeMultiboot(kernel: kernel, image: image) }
            var initrdBytes: [UInt8]?
            if let initrd {
                do { initrdBytes = try GuestFile.read(initrd) } catch { throw ValidationError("\(initrd): \(error)") }
                if initrdBytes?.isEmpty == true { throw ValidationError("\(initrd): the file is empty") }
            }
            return .linux(kernel: image, initrd: initrdBytes, commandLine: cmdline ?? "console=ttyS0")
        }
        guard let guest else {
            if mode != nil || loadAddress != nil || entry != nil {
                throw ValidationError("--mode, --load-address and --entry need a GUEST file; the built-in demo guest chooses its own")
            }
            return .firmware(FirmwareImage.demo)
        }
        let bytes: [UInt8]
        do { bytes = try GuestFile.read(guest) } catch { throw ValidationError("\(guest): \(error)") }
        if bytes.isEmpty { throw ValidationError("\(guest): the file is empty") }
        if GuestFile.isELF(bytes) {
            if loadAddress != nil || entry != nil || (mode != nil && mode != .long) {
                throw ValidationError(
                    "\(guest): is an ELF executable, loaded by its program headers and entered in long mode at its entry point; --mode, --load-address and --entry apply to flat binaries only"
                )
            }
            return .elf(bytes: bytes)
        }
        return .flat(
            bytes: bytes, mode: mode ?? .real,
            loadAddress: try loadAddress.map { try Self.parse($0, as: "--load-address", CommandLineValue.parseAddress) },
            entry: try entry.map { try Self.parse($0, as: "--entry", CommandLineValue.parseAddress) })
    }

    /// A Multiboot kernel: --initrd lists its modules as QEMU's -initrd does
    /// (each module's command line is its whole item, file name included).
    func makeMultiboot(kernel: String, image: [UInt8]) throws -> MachineConfiguration.Guest {
        var modules: [MultibootModule] = []
        if let initrd {
            let items: [CommandLineValue.ModuleItem]
            do { items = try CommandLineValue.parseModuleList(initrd) } catch { throw ValidationError("--initrd: \(error)") }
            for item in items {
                do { modules.append(MultibootModule(bytes: try GuestFile.read(item.path), commandLine: item.commandLine)) } catch {
                    throw ValidationError("\(item.path): \(error)")
                }
            }
        }
        return .multiboot(kernel: image, name: kernel, modules: modules, commandLine: cmdline ?? "")
    }

    static func writeToStandardError(_ text: String) {
        var text = text
        text.withUTF8 { buffer in _ = Glibc.write(STDERR_FILENO, buffer.baseAddress, buffer.count) }
    }

    static func report(_ message: String) {
        let lines = message.split(separator: "\n", omittingEmptySubsequences: false).map { "swiftvmm: \($0)\n" }.joined()
        var text = lines
        text.withUTF8 { buffer in _ = Glibc.write(STDERR_FILENO, buffer.baseAddress, buffer.count) }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
