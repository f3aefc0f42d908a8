import APIServer
import ArgumentParser
import Dispatch
import FirecrackerAPI
import FirecrackerVMM
import Foundation
import Logging
import Migration
import Sandbox
import SwiftVMM
import SwiftVMMConfig

#if canImport(Glibc)
    import Glibc
#endif

/// `swiftvmm serve`: Firecracker's launch flags, API socket and config file.
/// Under the name `firecracker` (a symlink) the binary runs this directly.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve Firecracker's REST API on a Unix socket, or boot a Firecracker config file.",
        discussion: """
            As Firecracker does: COM1 goes to stdout, and the process exits when the guest ends \
            (debug-exit, power-off, reset) with the status `swiftvmm run` would give. The binary \
            invoked as `firecracker` (a symlink) takes these flags directly. A config file has the \
            API's resources as top-level keys ("boot-source", "machine-config", ...) and swiftvmm's \
            own fields under "x-swiftvmm"; see README.md.
            """)

    /// The Firecracker API version whose resources this serves.
    static let firecrackerAPIVersion = "1.12.0"
    /// swiftvmm's own version.
    static let swiftvmmVersion = "0.1.0"

    @Option(name: .customLong("api-sock"), help: ArgumentHelp("The Unix socket the API listens on.", valueName: "path"))
    var apiSock: String?

    @Option(
        name: .customLong("config-file"),
        help: ArgumentHelp("A Firecracker config file: the machine is configured from it and started at once.", valueName: "file"))
    var configFile: String?

    @Flag(name: .customLong("no-api"), help: "Serve no API (needs --config-file).")
    var noAPI = false

    @Option(name: .customLong("id"), help: ArgumentHelp("The instance id GET / reports.", valueName: "id"))
    var id = "anonymous-instance"

    @Option(name: .customLong("log-path"), help: ArgumentHelp("Where the log goes (a file or FIFO); default stderr.", valueName: "path"))
    var logPath: String?

    @Option(name: .customLong("level"), help: ArgumentHelp("Log level: Error, Warning, Info, Debug, Trace or Off.", valueName: "level"))
    var level: String?

    @Flag(
        name: .customLong("boot-timer"),
        help: "Firecracker's boot timer: a guest's write of 123 at 0xd0000000 prints 'Guest-boot-time = ...' on stderr.")
    var bootTimer = false

    @Flag(name: .customLong("version"), help: "Print the version and exit.")
    var version = false

    @Option(
        name: .customLong("http-api-max-payload-size"), help: ArgumentHelp("The largest request body (default 51200).", valueName: "bytes"))
    var maximumPayload: Int?

    @Option(name: .customLong("http-idle-timeout-ms"), help: .hidden)
    var idleTimeoutMilliseconds: Int?

    @Option(
        name: .customLong("incoming"),
        help: ArgumentHelp(
            "Wait for a live migration on unix:PATH or tcp:HOST:PORT and run the machine it brings (with --api-sock, controlled by the API as if started here).",
            valueName: "address"))
    var incoming: String?

    @Option(
        name: .customLong("memory-backing"),
        help: ArgumentHelp(
            "Guest RAM: anonymous (default) or memfd (shared; a migration to a swiftvmm on this host hands it over without copying).",
            valueName: "kind"))
    var memoryBacking: MemoryBacking = .anonymous

    @Option(
        name: .customLong("incoming-max-memory"),
        help: ArgumentHelp("With --incoming: refuse a machine with more RAM than this (512M, 4G).", valueName: "size"))
    var incomingMaxMemory: String?

    // Flags Firecracker's launchers pass that have no meaning here: accepted, so a launcher works unchanged.
    @Option(name: .customLong("seccomp-level"), help: .hidden) var seccompLevel: String?
    @Flag(name: .customLong("no-seccomp"), help: .hidden) var noSeccomp = false
    @Option(name: .customLong("start-time-us"), help: .hidden) var startTimeUs: String?
    @Option(name: .customLong("start-time-cpu-us"), help: .hidden) var startTimeCpuUs: String?
    @Option(name: .customLong("parent-cpu-time-us"), help: .hidden) var parentCpuTimeUs: String?
    @Flag(name: .customLong("show-level"), help: .hidden) var showLevel = false
    @Flag(name: .customLong("show-log-origin"), help: .hidden) var showLogOrigin = false

    @OptionGroup(title: "Sandbox") var sandbox: SandboxOptions

    func validate() throws {
        if version { return }
        if noAPI, configFile == nil { throw ValidationError("--no-api needs --config-file: otherwise nothing could configure the machine") }
        if let incoming {
            do { _ = try MigrationAddress(parsing: incoming) } catch { throw ValidationError("--incoming: \(error)") }
            if configFile != nil {
                throw ValidationError("--incoming and --config-file exclude each other: the machine comes from the source")
            }
            return
        }
        if incomingMaxMemory != nil { throw ValidationError("--incoming-max-memory needs --incoming") }
        if !noAPI, apiSock == nil, configFile == nil {
            throw ValidationError("give --api-sock PATH, or --config-file FILE (with --no-api)")
        }
        if let level, !LoggerConfig.levels.contains(where: { $0.lowercased() == level.lowercased() }) {
            throw ValidationError("--level: '\(level)' is not one of \(LoggerConfig.levels.joined(separator: ", "))")
        }
        if let maximumPayload, maximumPayload < 1 { throw ValidationError("--http-api-max-payload-size: must be at least 1") }
    }

    func run() throws {
        if version {
            print("Firecracker v\(Self.firecrackerAPIVersion) (swiftvmm \(Self.swiftvmmVersion))")
            return
        }
        var file: FirecrackerConfig?
        if let configFile {
            do { file = try Self.readConfigFile(configFile) } catch { throw ValidationError("\(error)") }
        }
        // The VMM's own log on stderr: stdout belongs to the guest's COM1.
        _ = MachineSession.bootstrapLogging(level: .warning)
        let mailbox = Mailbox()
        let controller = FirecrackerController(instanceID: id, version: Self.firecrackerAPIVersion) { mailbox.put($0) }
        controller.bootTimer = bootTimer
        controller.memoryBacking = memoryBacking
        do { try controller.configureLogger(LoggerConfig(logPath: logPath, level: level ?? "Warning")) } catch {
            throw ValidationError("--log-path: \(error.message)")
        }

        try sandbox.prepare(dropCapabilities: sandbox.user != nil, landlockPolicy: sandbox.serverPolicy)
        var server: UnixSocketHTTPServer?
        if !noAPI, let apiSock {
            var limits = ServerLimits()
            if let maximumPayload { limits.maximumBodyBytes = maximumPayload }
            if let idleTimeoutMilliseconds { limits.idleTimeout = .milliseconds(max(idleTimeoutMilliseconds, 1)) }
            do { server = try UnixSocketHTTPServer(path: apiSock, handler: controller, limits: limits) } catch {
                throw ValidationError("--api-sock: cannot listen on \(apiSock): \(error)")
            }
        }
        // The API's event loop is no HostThread: it enters its filter itself.
        if let server { try server.runOnEventLoop { Sandbox.enterThread(.api, name: "api") } }
        try sandbox.confine(dropCapabilities: sandbox.user != nil)
        if let file {
            do { try controller.boot(from: file) } catch {
                server?.close()
                throw ValidationError("\(configFile ?? ""): \(error.message)")
            }
        }
        if let incoming { try receive(from: incoming, into: controller, server: server) }
        // The guest's life is the process's: wait for a machine, run it, exit as the guest did.
        let handle = mailbox.take()
        let reason: StopReason
        do { reason = try handle.machine.runOnVCPUThread() } catch {
            server?.close()
            MachineSession.report("error: \(error)")
            throw ExitCode(1)
        }
        if reason == .migrated {
            // PUT /migrate's 204 goes out before the server does.
            controller.waitForMigrationAnswer(timeout: .seconds(2))
            usleep(100_000)
        }
        server?.close()
        MachineSession.report(reason.description)
        throw ExitCode(reason.exitStatus)
    }

    /// `--incoming`: waits for the source, receives the machine and hands it
    /// to the controller, which runs it as one started here.
    private func receive(from incoming: String, into controller: FirecrackerController, server: UnixSocketHTTPServer?) throws {
        let address: MigrationAddress
        do { address = try MigrationAddress(parsing: incoming) } catch { throw ValidationError("--incoming: \(error)") }
        var options = IncomingMigrationOptions()
        if let incomingMaxMemory {
            do { options.maximumMemory = try CommandLineValue.parseSize(incomingMaxMemory) } catch {
                throw ValidationError("--incoming-max-memory: \(error)")
            }
        }
        var logger = Logger(label: "swiftvmm")
        logger.logLevel = .warning
        let machine: Machine
        do {
            machine = try Machine.receiveMigration(at: address, io: MachineIO(logger: logger), options: options) {
                MachineSession.report("waiting for a migration on \(address)")
            }
        } catch {
            server?.close()
            MachineSession.report("error: incoming migration failed: \(error)")
            throw ExitCode(1)
        }
        controller.adopt(machine)
    }

    /// A config file's resources, checked strictly; errors name the file and the field.
    static func readConfigFile(_ path: String) throws -> FirecrackerConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("--config-file: cannot read \(path): \(String(cString: strerror(errno)))")
        }
        guard data.count <= 1 << 20 else { throw ValidationError("--config-file: \(path) is larger than 1 MiB") }
        do { return try FirecrackerConfig.decode(Array(data)) } catch { throw ValidationError("\(path): \(error.message)") }
    }
}

/// Hands the machine from the API's queue to the main thread, which runs it.
final class Mailbox: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var handle: MachineHandle?

    func put(_ handle: MachineHandle) {
        lock.withLock { self.handle = handle }
        semaphore.signal()
    }

    func take() -> MachineHandle {
        while true {
            semaphore.wait()
            if let handle = lock.withLock({ handle }) { return handle }
        }
    }
}
