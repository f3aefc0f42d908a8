import ArgumentParser
import GDBStub
import Logging
import Sandbox
import SwiftVMM
import SwiftVMMConfig
import VMCore
import VMMConsole

#if canImport(Glibc)
    import Glibc
#endif

@main
struct SwiftVMMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftvmm",
        abstract: "A small, fast, honest virtual machine monitor on Linux KVM.",
        subcommands: [Run.self, Restore.self, Serve.self, Migrate.self],
        defaultSubcommand: Run.self)

    /// Invoked as `firecracker` (a symlink), the binary takes Firecracker's flags directly.
    static func main() {
        // Before anything of our own is open: nothing inherited past stderr is the
        // VMM's, but the parent's own socket (see `Sandbox.closeInheritedDescriptors`).
        let inherited = SandboxOptions.inheritedDescriptorPolicy(CommandLine.arguments)
        if inherited.close {
            do { try Sandbox.closeInheritedDescriptors(keepingParentSocket: inherited.keepParentSocket) } catch {
                MachineSession.report("error: \(error)")
                Glibc.exit(1)
            }
        }
        // A launcher stops the VMM with SIGTERM (or SIGINT, SIGHUP); a parent that
        // spawned it from a thread blocking them (a Dispatch worker, a test runner's
        // thread) passed that mask on, and the VMM would ignore them all its life.
        var termination = sigset_t()
        sigemptyset(&termination)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&termination, signal) }
        pthread_sigmask(SIG_UNBLOCK, &termination, nil)
        let name = CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "") }
        if name == "firecracker" {
            Serve.main(Array(CommandLine.arguments.dropFirst()))
        } else {
            main(nil)
        }
    }
}

extension CPUMode: ExpressibleByArgument {}
extension MemoryBacking: ExpressibleByArgument {}

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

            A --config file is a JSON object with a field for each option (snake_case: load_address, \
            cpuid_mask, log_level, ...; "guest" for GUEST), e.g. {"guest": "hello.bin", "memory": "64M"}. \
            Options given as well override its fields. A relative path in the file is relative to the \
            file's directory. --print-config prints such a file.
            """)

    @Option(
        help: ArgumentHelp(
            "A JSON file describing the machine (a field for each option); options given as well override its fields. Relative paths in it are relative to its directory.",
            valueName: "file"))
    var config: String?

    @Flag(help: "Print the machine the options (and --config) describe as a JSON config file on stdout, and exit without running it.")
    var printConfig = false

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

    @Flag(
        help:
            "Plug in QEMU's pc-testdev (ports 0xe0-0xe7, ISA IRQ lines at 0x2000-0x2017, MMIO at 0xff000000), which kvm-unit-tests uses with TEST_DEVICE=1."
    )
    var testDevices = false

    @Flag(
        name: .customLong("boot-timer"),
        help:
            "Firecracker's boot timer: a guest's one-byte write of 123 at 0xd0000000 prints 'Guest-boot-time = ...' on stderr (PC platform; virtio windows move up one)."
    )
    var bootTimer = false

    @Option(
        name: .customLong("memory-backing"),
        help: ArgumentHelp(
            "Guest RAM: anonymous (default) or memfd (shared; a migration to a swiftvmm on this host hands it over without copying).",
            valueName: "kind"))
    var memoryBacking: MemoryBacking = .anonymous

    @OptionGroup var session: SessionOptions

    @OptionGroup(title: "Virtio devices") var devices: DeviceOptions

    @OptionGroup(title: "Sandbox") var sandbox: SandboxOptions

    @Option(
        help: ArgumentHelp(
            "Serve the GDB remote protocol on unix:PATH or tcp:HOST:PORT (QEMU's -s is tcp:localhost:1234); see the README's GDB section.",
            valueName: "endpoint"))
    var gdb: String?

    @Flag(help: "With --gdb: run no guest instruction until a debugger connects and continues (QEMU's -S).")
    var gdbWait = false

    @Argument(help: "The guest image. Omit it to boot the built-in demo guest.")
    var guest: String?

    /// The machine the flags describe: only the flags given, each as typed.
    var flagSpec: MachineSpec {
        MachineSpec(
            guest: guest, mode: mode?.rawValue, loadAddress: loadAddress, entry: entry, memory: memory, kernel: kernel, initrd: initrd,
            cmdline: cmdline, cpuidMask: cpuidMask.map(MachineSpec.splitFeatureList), cpus: cpus, timeout: session.timeout,
            serial2: session.serial2, debugcon: session.debugcon, logLevel: session.logLevel?.rawValue, stats: session.stats ? true : nil,
            snapshotDir: session.snapshotDir, disk: devices.disk.isEmpty ? nil : devices.disk,
            net: devices.net.isEmpty ? nil : devices.net, vsock: devices.vsock, rng: devices.rng ? true : nil,
            balloon: devices.balloon ? true : nil, consoleDevice: devices.consoleDevice, gdb: gdb,
            gdbWait: gdbWait ? true : nil)
    }

    /// The flags' spec over the --config file's, checked; errors name the
    /// flag, or the file and field, the value came from.
    func resolvedSpec() throws -> ResolvedSpec {
        let flags = flagSpec
        var spec = flags
        var source = SpecSource.flags
        if let config {
            do { spec = try MachineSpec(contentsOfConfigFile: config).overridden(by: flags) } catch { throw ValidationError("\(error)") }
            source = .configFile(config, overriddenByFlags: flags.givenFields)
        }
        do { return try spec.resolve(source: source) } catch { throw ValidationError("\(error)") }
    }

    func validate() throws { _ = try resolvedSpec() }

    func run() throws {
        let resolved = try resolvedSpec()
        if printConfig {
            print(resolved.spec.jsonText, terminator: "")
            return
        }
        let logger = MachineSession.bootstrapLogging(level: resolved.logLevel.loggerLevel)
        try sandbox.prepare(
            landlockPolicy: sandbox.sessionPolicy(snapshotDirectory: resolved.snapshotDirectory ?? MachineSession.defaultSnapshotDirectory))
        let machine = try makeMachine(resolved, logger: logger)
        machine.specification = resolved.spec
        try MachineSession(
            machine: machine, timeout: resolved.timeout, stats: resolved.stats,
            snapshotDirectory: resolved.snapshotDirectory ?? MachineSession.defaultSnapshotDirectory,
            gdb: resolved.gdb.flatMap(GDBEndpoint.init), gdbWait: resolved.gdbWait, sandbox: sandbox
        ).run()
    }

    /// Reads the guest and builds the machine. The file's bytes live only in
    /// here: once they are in guest memory the VMM does not keep a second copy
    /// (a 66 MB vmlinux would otherwise stay resident for the whole run).
    func makeMachine(_ resolved: ResolvedSpec, logger: Logger) throws -> Machine {
        var configuration: MachineConfiguration
        do { configuration = try MachineConfiguration(resolved: resolved, logger: logger) } catch { throw ValidationError("\(error)") }
        configuration.testDevices = testDevices
        configuration.bootTimer = bootTimer
        configuration.memoryBacking = memoryBacking
        do {
            return try Machine(configuration)
        } catch {
            if let usage = resolved.usageError(for: error) { throw ValidationError("\(usage)") }
            MachineSession.report("error: \(error)")
            throw ExitCode(1)
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
