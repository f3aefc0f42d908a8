import APIServer
import Devices
import FirecrackerAPI
import Foundation
import Logging
import Migration
import SwiftVMM
import SwiftVMMConfig
import VMCore
import VirtioDevices

/// A machine driven through Firecracker's API: the resources set before
/// `InstanceStart`, the machine after it, and what each request may do in
/// each state.
///
/// Requests arrive one at a time (the server calls `handle` on one serial
/// queue); `lock` guards the state against `start`'s callers and `GET`s from
/// the runner's side all the same.
public final class FirecrackerController: HTTPRequestHandler, @unchecked Sendable {
    /// What the controller needs from the process: a thread that runs the
    /// machine (and, as Firecracker does, ends the process when its guest ends).
    public typealias Runner = @Sendable (MachineHandle) -> Void

    /// The instance id (`--id`), reported by `GET /`.
    public let instanceID: String
    /// The version `GET /` and `GET /version` report.
    public let version: String
    private let runner: Runner
    private let lock = NSLock()
    private var config = FirecrackerConfig()
    /// A boot-specific resource was set: `snapshot/load` is no longer allowed.
    private var bootConfigured = false
    private var state = InstanceState.notStarted
    private var handle: MachineHandle?
    private var metrics = APIMetrics()
    private var startTime: ContinuousClock.Instant?
    private var logFile: FileHandle?
    private var logLevel: Logger.Level? = .info
    /// Firecracker's `--boot-timer`: machines started from here get the boot-timer device.
    /// Set before the first request.
    public var bootTimer = false
    /// What the guest RAM of machines started here is made of (`serve --memory-backing`). Set before the first request.
    public var memoryBacking: MemoryBacking = .anonymous
    /// The live migration's progress, behind a lock of its own: `GET /migrate`
    /// reads it while `PUT /migrate` runs on a thread of its own.
    private let migration = MigrationStatus()

    public init(instanceID: String = "anonymous-instance", version: String, runner: @escaping Runner) {
        self.instanceID = instanceID
        self.version = version
        self.runner = runner
    }

    /// Where the machine is in its life.
    public var instanceState: InstanceState { lock.withLock { state } }

    // MARK: Requests

    /// `PUT /migrate` answers once the migration has ended, from a thread of
    /// its own, so that `GET /migrate` (and every other request) is served meanwhile.
    public func handle(_ request: HTTPRequest, respond: @escaping @Sendable (HTTPResponse) -> Void) {
        guard request.method == "PUT", request.path == "/migrate" else { return respond(handle(request)) }
        let started: (MachineHandle, MigrationAddress, MigrationOptions)
        do throws(APIFault) { started = try startMigration(request.body) } catch {
            lock.withLock { metrics.faults += 1 }
            log(.warning, "PUT /migrate: \(error.message)")
            return respond(HTTPResponse(status: error.status, json: error.body))
        }
        let (handle, address, options) = started
        let status = migration
        Thread.detachNewThread { [self] in
            do {
                let report = try handle.machine.migrate(to: address, options: options) { status.update($0) }
                log(.info, "PUT /migrate: done in \(report.totalTime), downtime \(report.downtime)")
                status.finish(nil)
                respond(.noContent)
            } catch {
                let fault = APIFault("Migration error: \(error)")
                log(.warning, "PUT /migrate: \(fault.message)")
                status.finish(fault.message)
                respond(HTTPResponse(status: fault.status, json: fault.body))
            }
        }
    }

    /// Checks a `PUT /migrate` and marks a migration as running.
    private func startMigration(_ body: [UInt8]) throws(APIFault) -> (MachineHandle, MigrationAddress, MigrationOptions) {
        lock.lock()
        defer { lock.unlock() }
        metrics.requests += 1
        metrics.requestsByRoute["PUT /migrate", default: 0] += 1
        let parameters = try MigrationParams.decode(body)
        try state.check(.postBoot)
        guard let handle else { throw .notSupportedBeforeStart }
        let address: MigrationAddress
        do { address = try MigrationAddress(parsing: parameters.destinationURL) } catch { throw APIFault("destination_url: \(error)") }
        var options = MigrationOptions()
        if let downtime = parameters.downtimeMs { options.downtimeLimit = .milliseconds(downtime) }
        if let bandwidth = parameters.bandwidthMibS { options.bandwidthLimit = UInt64(bandwidth) << 20 }
        if let timeout = parameters.timeoutS { options.timeout = .seconds(timeout) }
        guard migration.begin() else { throw APIFault("a migration of this machine is already running") }
        return (handle, address, options)
    }

    /// Waits until a migration's answer has been handed to the server (at most `timeout`).
    public func waitForMigrationAnswer(timeout: Duration) { migration.waitUntilFinished(timeout: timeout) }

    /// Takes a machine that arrived by migration (`serve --incoming`) as if it had started here, and runs it.
    public func adopt(_ machine: Machine) {
        lock.lock()
        defer { lock.unlock() }
        bootConfigured = true
        launch(MachineHandle(machine), paused: false)
    }

    public func handle(_ request: HTTPRequest) -> HTTPResponse {
        lock.lock()
        defer { lock.unlock() }
        metrics.requests += 1
        let response: HTTPResponse
        do throws(APIFault) {
            guard let (route, id) = Route.match(method: request.method, path: request.path) else {
                throw APIFault.invalidPath(method: request.method, path: request.path)
            }
            metrics.requestsByRoute[route.description, default: 0] += 1
            if let id { try checkID(id) }
            response = try answer(route, id: id, body: request.body)
        } catch {
            metrics.faults += 1
            log(.warning, "\(request.method) \(request.path): \(error.message)")
            return HTTPResponse(status: error.status, json: error.body)
        }
        log(.info, "\(request.method) \(request.path): \(response.status)")
        return response
    }

    /// Configures the machine from a config file's resources and starts it
    /// (`--config-file`): the same checks and the same path as the API's.
    public func boot(from file: FirecrackerConfig) throws(APIFault) {
        lock.lock()
        defer { lock.unlock() }
        try file.validate()
        if let logger = file.logger { try setLogger(logger) }
        config = file
        config.logger = nil
        bootConfigured = true
        try start()
    }

    /// Sets where the log goes and how much of it (`--log-path`, `--level`), as `PUT /logger` does.
    public func configureLogger(_ logger: LoggerConfig) throws(APIFault) {
        lock.lock()
        defer { lock.unlock() }
        try logger.validate()
        try setLogger(logger)
    }

    private func checkID(_ id: String) throws(APIFault) {
        guard !id.isEmpty else { throw APIFault("The ID cannot be empty.") }
        guard id.unicodeScalars.allSatisfy({ ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" }) else {
            throw APIFault("API Resource IDs can only contain alphanumeric characters and underscores.")
        }
    }

    private func answer(_ route: Route, id: String?, body: [UInt8]) throws(APIFault) -> HTTPResponse {
        func requireEmpty() throws(APIFault) {
            if !body.isEmpty, !body.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) {
                throw APIFault("\(route): this request takes no body")
            }
        }
        func sameID(_ bodyID: String, _ field: String) throws(APIFault) {
            if bodyID != id { throw APIFault("\(field): the id from the path does not match the id from the body") }
        }
        switch (route.method, route.path) {
        case ("GET", "/"):
            try requireEmpty()
            return try json(InstanceInfo(id: instanceID, state: state, vmmVersion: version))
        case ("GET", "/version"):
            try requireEmpty()
            return HTTPResponse(status: 200, json: "{\"firecracker_version\": \"\(version)\"}")
        case ("GET", "/vm/config"):
            try requireEmpty()
            var full = config
            if let machine = handle?.machine, let spec = machine.specification {
                let extras = config.extras
                full = FirecrackerConfig(spec: spec, trackDirtyPages: machine.trackDirtyPages)
                if full.extras == nil { full.extras = extras }
            }
            return try json(full)
        case ("GET", "/machine-config"):
            try requireEmpty()
            return try json(config.machineConfig ?? MachineConfig())
        case ("PUT", "/machine-config"):
            try state.check(.preBoot)
            config.machineConfig = try MachineConfig.decode(body)
            bootConfigured = true
        case ("PATCH", "/machine-config"):
            try state.check(.preBoot)
            let update = try MachineConfigUpdate.decode(body)
            config.machineConfig = try (config.machineConfig ?? MachineConfig()).patched(with: update)
            bootConfigured = true
        case ("PUT", "/boot-source"):
            try state.check(.preBoot)
            let source = try BootSource.decode(body)
            try readable(source.kernelImagePath, field: "kernel_image_path")
            if let initrd = source.initrdPath { try readable(initrd, field: "initrd_path") }
            config.bootSource = source
            bootConfigured = true
        case ("PUT", "/x-swiftvmm"):
            try state.check(.preBoot)
            let extras = try SwiftVMMExtras.decode(body)
            if let guest = extras.guest { try readable(guest, field: "guest") }
            config.extras = extras
            bootConfigured = true
        case ("PUT", "/drives/{drive_id}"):
            try state.check(.preBoot)
            let drive = try Drive.decode(body)
            try sameID(drive.driveId, "drive_id")
            if let path = drive.pathOnHost { try readable(path, field: "path_on_host") }
            var candidate = config
            candidate.drives = (config.drives ?? []).filter { $0.driveId != drive.driveId } + [drive]
            try check(candidate)
        case ("PATCH", "/drives/{drive_id}"):
            try state.check(.postBoot)
            let drive = try PartialDrive.decode(body)
            try sameID(drive.driveId, "drive_id")
            guard config.drives?.contains(where: { $0.driveId == drive.driveId }) == true else {
                throw APIFault("drive_id: no drive '\(drive.driveId)'")
            }
            // A disk's image is opened once, when the machine starts; swapping it is not supported yet.
            throw APIFault("drive_id: updating drive '\(drive.driveId)' of a running machine is not supported by swiftvmm")
        case ("PUT", "/network-interfaces/{iface_id}"):
            try state.check(.preBoot)
            let net = try NetworkInterface.decode(body)
            try sameID(net.ifaceId, "iface_id")
            var candidate = config
            candidate.networkInterfaces = (config.networkInterfaces ?? []).filter { $0.ifaceId != net.ifaceId } + [net]
            try check(candidate)
        case ("PATCH", "/network-interfaces/{iface_id}"):
            try state.check(.postBoot)
            let net = try PartialNetworkInterface.decode(body)
            try sameID(net.ifaceId, "iface_id")
            guard config.networkInterfaces?.contains(where: { $0.ifaceId == net.ifaceId }) == true else {
                throw APIFault("iface_id: no network interface '\(net.ifaceId)'")
            }
            throw APIFault("iface_id: rate limiters are not supported by swiftvmm")
        case ("PUT", "/vsock"):
            try state.check(.preBoot)
            var candidate = config
            candidate.vsock = try Vsock.decode(body)
            try check(candidate)
        case ("PUT", "/entropy"):
            try state.check(.preBoot)
            var candidate = config
            candidate.entropy = try EntropyDevice.decode(body)
            try check(candidate)
        case ("PUT", "/balloon"):
            try state.check(.preBoot)
            var candidate = config
            candidate.balloon = try Balloon.decode(body)
            try check(candidate)
        case ("GET", "/balloon"):
            try requireEmpty()
            guard var balloon = config.balloon else { throw APIFault("No balloon device configured.") }
            if let device = balloonDevice { balloon.amountMib = Int(device.targetPages / Self.pagesPerMiB) }
            return try json(balloon)
        case ("GET", "/balloon/statistics"):
            try requireEmpty()
            guard let balloon = config.balloon else { throw APIFault("No balloon device configured.") }
            guard (balloon.statsPollingIntervalS ?? 0) > 0 else { throw APIFault("Statistics for the balloon device are not enabled") }
            guard let device = balloonDevice else { throw .notSupportedBeforeStart }
            return try json(
                BalloonStatistics(targetPages: device.targetPages, actualPages: device.actualPages, values: device.statistics.values))
        case ("PATCH", "/balloon"):
            let update = try BalloonUpdate.decode(body)
            guard config.balloon != nil else { throw APIFault("No balloon device configured.") }
            config.balloon?.amountMib = update.amountMib
            balloonDevice?.setTarget(pages: UInt32(update.amountMib) * Self.pagesPerMiB)
        case ("PATCH", "/balloon/statistics"):
            let update = try BalloonStatsUpdate.decode(body)
            guard config.balloon != nil else { throw APIFault("No balloon device configured.") }
            config.balloon?.statsPollingIntervalS = update.statsPollingIntervalS
        case ("PUT", "/actions"):
            let action = try InstanceActionInfo.decode(body)
            switch action.action {
            case .instanceStart:
                try state.check(.preBoot)
                try start()
            case .flushMetrics: try flushMetrics()
            case .sendCtrlAltDel:
                try state.check(.postBoot)
                guard let machine = handle?.machine else { throw .notSupportedBeforeStart }
                // Through the i8042, as Firecracker does; a paused machine gets the keys when it resumes.
                do { try machine.sendCtrlAltDel() } catch { throw APIFault("SendCtrlAltDel: \(error)") }
            case nil: throw APIFault("action_type: unknown action")
            }
        case ("PATCH", "/vm"):
            let change = try VMStateChange.decode(body)
            try state.check(.postBoot)
            guard let machine = handle?.machine else { throw .notSupportedBeforeStart }
            if change.isPause {
                machine.pause()
                state = .paused
            } else {
                machine.resume()
                state = .running
            }
        case ("PUT", "/snapshot/create"):
            let parameters = try SnapshotCreateParams.decode(body)
            try state.check(.postBoot)
            try createSnapshot(parameters)
        case ("PUT", "/snapshot/load"):
            let parameters = try SnapshotLoadParams.decode(body)
            try state.check(.preBoot)
            if bootConfigured { throw .loadSnapshotNotAllowed }
            try loadSnapshot(parameters)
        case ("GET", "/migrate"):
            try requireEmpty()
            return try json(migration.progress)
        case ("PUT", "/logger"):
            try setLogger(try LoggerConfig.decode(body))
        case ("PUT", "/metrics"):
            try state.check(.preBoot)
            let metrics = try MetricsConfig.decode(body)
            if config.metrics != nil { throw APIFault("metrics_path: the metrics system is already configured") }
            try openForWriting(metrics.metricsPath, field: "metrics_path").closeFile()
            config.metrics = metrics
        default:
            throw APIFault.invalidPath(method: route.method, path: route.path)
        }
        return .noContent
    }

    /// A configuration with a device resource in it goes through the one
    /// mapping onto `MachineSpec`, which refuses devices swiftvmm lacks.
    private func check(_ candidate: FirecrackerConfig) throws(APIFault) {
        var probe = candidate
        if probe.bootSource == nil, probe.extras?.guest == nil { probe.bootSource = BootSource(kernelImagePath: "/") }
        _ = try probe.machineSpec()
        config = candidate
    }

    private func json(_ value: some Encodable) throws(APIFault) -> HTTPResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do { return HTTPResponse(status: 200, body: Array(try encoder.encode(value))) } catch {
            throw APIFault(status: 500, "cannot encode the answer: \(error)")
        }
    }

    private func readable(_ path: String, field: String) throws(APIFault) {
        var info = stat()
        guard stat(path, &info) == 0 else { throw APIFault("\(field): cannot open \(path): \(String(cString: strerror(errno)))") }
        guard info.st_mode & S_IFMT == S_IFREG else { throw APIFault("\(field): \(path) is not a regular file") }
        guard access(path, R_OK) == 0 else { throw APIFault("\(field): cannot read \(path): \(String(cString: strerror(errno)))") }
    }

    private func openForWriting(_ path: String, field: String) throws(APIFault) -> FileHandle {
        // Non-blocking, so that a FIFO with no reader yet does not hold the API's queue.
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw APIFault("\(field): cannot open \(path) for writing: \(String(cString: strerror(errno)))") }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    // MARK: Start, snapshots

    private func start() throws(APIFault) {
        let spec = try config.machineSpec()
        var configuration: MachineConfiguration
        do { configuration = try MachineConfiguration(spec: spec, source: .flags, logger: machineLogger()) } catch {
            throw FirecrackerConfig.fault(from: error)
        }
        // Firecracker's machines are PCs: the i8042, the RTC, the interrupt controllers.
        configuration.platform = .pc
        configuration.bootTimer = bootTimer
        configuration.memoryBacking = memoryBacking
        let machine: Machine
        do { machine = try Machine(configuration, trackDirtyPages: config.machineConfig?.trackDirtyPages ?? false) } catch {
            throw APIFault("Start microvm error: \(error)")
        }
        machine.specification = spec
        if let amount = config.balloon?.amountMib, amount > 0, let device = Self.balloon(of: machine) {
            device.setTarget(pages: UInt32(amount) * Self.pagesPerMiB)
        }
        launch(MachineHandle(machine), paused: false)
    }

    /// 4 KiB balloon pages in a MiB.
    static let pagesPerMiB: UInt32 = 256

    /// The running machine's balloon, if it has one.
    private var balloonDevice: VirtioBalloon? { handle.flatMap { Self.balloon(of: $0.machine) } }

    private static func balloon(of machine: Machine) -> VirtioBalloon? {
        machine.virtioTransports.lazy.compactMap { $0.device as? VirtioBalloon }.first
    }

    private func launch(_ handle: MachineHandle, paused: Bool) {
        if paused { handle.machine.pause() }
        self.handle = handle
        state = paused ? .paused : .running
        startTime = .now
        runner(handle)
    }

    private func createSnapshot(_ parameters: SnapshotCreateParams) throws(APIFault) {
        guard state == .paused, let machine = handle?.machine else {
            throw APIFault(
                "Create snapshot error: the microVM must be paused (PATCH /vm {\"state\": \"Paused\"}) before a snapshot is taken")
        }
        if parameters.isDiff, !machine.trackDirtyPages {
            throw APIFault("snapshot_type: Diff needs dirty-page tracking; set machine-config.track_dirty_pages before InstanceStart")
        }
        do { try machine.snapshot(statePath: parameters.snapshotPath, memoryPath: parameters.memFilePath, diff: parameters.isDiff) } catch {
            throw APIFault("Create snapshot error: \(error)")
        }
    }

    private func loadSnapshot(_ parameters: SnapshotLoadParams) throws(APIFault) {
        let machine: Machine
        do {
            machine = try Machine.restore(
                statePath: parameters.snapshotPath, memoryPath: parameters.memoryPath, io: MachineIO(logger: machineLogger()))
        } catch {
            throw APIFault("Load snapshot error: \(error)")
        }
        launch(MachineHandle(machine), paused: parameters.resumeVm != true)
    }

    // MARK: Logger, metrics

    private func machineLogger() -> Logger {
        var logger = Logger(label: "swiftvmm")
        logger.logLevel = logLevel ?? .critical
        return logger
    }

    private func setLogger(_ logger: LoggerConfig) throws(APIFault) {
        if let path = logger.logPath { logFile = try openForWriting(path, field: "log_path") }
        logLevel = logger.swiftLogLevel.flatMap(Logger.Level.init(rawValue:))
    }

    private func log(_ level: Logger.Level, _ message: String) {
        guard let logFile, let threshold = logLevel, level >= threshold else { return }
        let line = "[\(instanceID):\(level.rawValue)] \(message)\n"
        try? logFile.write(contentsOf: Data(line.utf8))
    }

    private func flushMetrics() throws(APIFault) {
        guard let path = config.metrics?.metricsPath else {
            throw APIFault("FlushMetrics: the metrics system is not configured (PUT /metrics first)")
        }
        metrics.flushes += 1
        let machine = handle?.machine
        // The vCPU threads count exits without a lock: read the counters of a
        // paused machine only (a running one is paused for the moment it takes).
        var exits = 0
        var assisted = 0
        if let machine {
            let wasRunning = state == .running
            if wasRunning { machine.pause() }
            exits = machine.exitCount
            assisted = machine.assistedInstructions
            if wasRunning { machine.resume() }
        }
        var runMilliseconds = 0
        if let startTime {
            let elapsed = ContinuousClock.now - startTime
            runMilliseconds = Int(elapsed.components.seconds) * 1000 + Int(elapsed.components.attoseconds / 1_000_000_000_000_000)
        }
        let routes = metrics.requestsByRoute.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ")
        let text = """
            {"utc_timestamp_ms": \(Int(Date().timeIntervalSince1970 * 1000)), "api_server": {"requests": \(metrics.requests), \
            "faults": \(metrics.faults), "flushes": \(metrics.flushes), "by_route": {\(routes)}}, \
            "vcpu": {"exits": \(exits), "assisted_instructions": \(assisted), \
            "run_time_ms": \(runMilliseconds)}, "state": "\(state.rawValue)"}

            """
        let file = try openForWriting(path, field: "metrics_path")
        defer { file.closeFile() }
        do { try file.write(contentsOf: Data(text.utf8)) } catch { throw APIFault("metrics_path: cannot write \(path): \(error)") }
    }
}
