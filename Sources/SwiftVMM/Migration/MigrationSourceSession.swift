import GuestMemory
import Migration
import VMCore

/// The source side of one migration, step by step (see `Machine.migrate(over:options:progress:)`),
/// with what a failure must undo: the throttle, the pause, the dirty log.
struct MigrationSourceSession {
    let machine: Machine
    let connection: MigrationConnection
    let options: MigrationOptions
    let report: (@Sendable (MigrationProgress) -> Void)?
    let throttle: MigrationThrottle
    let clock = ContinuousClock()
    let start: ContinuousClock.Instant
    var status = MigrationProgress()
    /// Whether the guest was paused before the migration (it is left so).
    let wasPaused: Bool
    /// Whether its run had begun (a machine built but never run may move too).
    let wasRunning: Bool
    var pausedHere = false
    var committed = false
    var loggingStarted = false
    var highestThrottle = 0

    init(
        machine: Machine, connection: MigrationConnection, options: MigrationOptions,
        progress: (@Sendable (MigrationProgress) -> Void)?
    ) {
        self.machine = machine
        self.connection = connection
        self.options = options
        self.report = progress
        throttle = MigrationThrottle(remote: machine.remote)
        start = clock.now
        wasPaused = machine.runState == .paused
        wasRunning = machine.runState == .running || wasPaused
    }

    var pageSize: UInt64 { GuestMemory.pageSize }

    // MARK: The steps

    mutating func run() throws(MigrationError) -> MigrationReport {
        let handover = try handshake()
        if handover { return try handOver() }
        status.phase = "precopy"
        do { try machine.startMigrationDirtyLog() } catch { throw .machine(error) }
        loggingStarted = true

        // Round 0: all of RAM, the never-touched pages as zero markers.
        var roundStart = clock.now
        var sentAtRoundStart = connection.bytesSent
        let populated: [DirtyPages]
        do { populated = try machine.memory.populatedPages() } catch { throw .machine(.memory(error)) }
        try sendPages(populated, everything: true)
        try send(.endOfRound(0))

        // Rounds of dirtied pages until what is left fits the downtime.
        var pending: [DirtyPages] = []
        var busyRounds = 0
        while true {
            let elapsed = clock.now - roundStart
            let sent = connection.bytesSent - sentAtRoundStart
            let seconds = max(Self.seconds(elapsed), 1e-6)
            if sent > 0 { status.bandwidth = UInt64(Double(sent) / seconds) }
            do { pending = try machine.takeDirtyPages() } catch { throw .machine(error) }
            let dirty = Self.count(pending)
            status.dirtyPagesPerSecond = UInt64(Double(dirty) / seconds)
            status.remainingPages = dirty
            let bandwidth = Double(max(status.bandwidth, 1))
            status.estimatedDowntimeMs = Double(dirty * pageSize) / bandwidth * 1000
            publish()
            if status.estimatedDowntimeMs <= Self.seconds(options.downtimeLimit) * 1000 || wasPaused { break }
            guard clock.now - start < options.timeout else { throw .timedOut(options.timeout) }
            // Auto-converge (QEMU's rule): the guest dirtied more than half of
            // what went out in this round, twice running: slow it down a step.
            if options.autoConverge, status.round >= 1, Double(dirty * pageSize) > Double(sent) / 2 {
                busyRounds += 1
                if busyRounds >= 2 {
                    busyRounds = 0
                    throttle.increase()
                    status.throttlePercent = throttle.percent
                    highestThrottle = max(highestThrottle, throttle.percent)
                }
            }
            status.round += 1
            roundStart = clock.now
            sentAtRoundStart = connection.bytesSent
            try sendPages(pending, everything: false)
            pending = []
            try send(.endOfRound(UInt32(truncatingIfNeeded: status.round)))
        }

        // Stop and copy: the guest pauses here until the destination runs it.
        throttle.stop()
        status.throttlePercent = 0
        status.phase = "stop-and-copy"
        let pauseStart = clock.now
        machine.pause()
        pausedHere = !wasPaused
        // A guest that ended here meanwhile (it exited, or was stopped) is not moved: its end stands.
        if wasRunning, machine.lifecycle.runEnded { throw .refused("the machine stopped running here during the migration") }
        let last: [DirtyPages]
        do { last = try machine.takeDirtyPages() } catch { throw .machine(error) }
        try sendPages(Self.union(pending, last), everything: false)
        machine.flushOutputsForMigration()
        let downtime = try commit(pausedAt: pauseStart, memoryHandedOver: false)
        return MigrationReport(
            rounds: status.round, bytesSent: connection.bytesSent, pagesSent: status.pagesSent, zeroPages: status.zeroPages,
            totalTime: clock.now - start, downtime: downtime, throttlePercent: highestThrottle, memoryHandedOver: false)
    }

    /// Undoes what the migration did to the guest, unless it was committed.
    mutating func fail(_ error: MigrationError) {
        throttle.stop()
        status.phase = "failed"
        status.error = "\(error)"
        status.throttlePercent = 0
        if !committed {
            if case .peer = error {} else { connection.sendErrorQuietly("\(error)") }
            connection.shutdown()
            if loggingStarted { machine.stopMigrationDirtyLog() }
            if pausedHere { machine.resume() }
        }
        report?(status)
    }

    /// The local live upgrade: no pages at all. The guest pauses, its RAM's
    /// memfd goes over (`SCM_RIGHTS`) and the destination maps the same pages;
    /// then the state, and the same `loaded`/`commit`/`running` handshake.
    /// Until `commit` the pages are still this side's alone to run (the
    /// destination only maps them), so a failure resumes the guest here.
    private mutating func handOver() throws(MigrationError) -> MigrationReport {
        guard let memfd = machine.memory.sharedDescriptor else { throw .refused("guest RAM is not memfd-backed") }
        status.phase = "handover"
        publish()
        let pauseStart = clock.now
        machine.pause()
        pausedHere = !wasPaused
        if wasRunning, machine.lifecycle.runEnded { throw .refused("the machine stopped running here during the migration") }
        machine.flushOutputsForMigration()
        do { try connection.send(.memoryHandover(size: machine.memory.size), passing: memfd) } catch {
            if let reason = try? connection.receive(), case .error(let text) = reason { throw .peer(text) }
            throw .wire(error)
        }
        let downtime = try commit(pausedAt: pauseStart, memoryHandedOver: true)
        return MigrationReport(
            rounds: 0, bytesSent: connection.bytesSent, pagesSent: 0, zeroPages: 0, totalTime: clock.now - start, downtime: downtime,
            throttlePercent: 0, memoryHandedOver: true)
    }

    /// The end both ways share, with the guest paused and its RAM on the
    /// destination: the state, `complete`, then `loaded`/`commit`/`running`.
    /// After `commit` the destination may run the guest, so this side never
    /// resumes it (nor touches handed-over pages) again. Returns the downtime.
    private mutating func commit(pausedAt pauseStart: ContinuousClock.Instant, memoryHandedOver: Bool) throws(MigrationError)
        -> Duration
    {
        let state: [UInt8]
        do { state = try machine.captureState().stateFile() } catch let error as MachineError { throw .machine(error) } catch {
            throw .machine(.snapshot(error as? SnapshotError ?? .malformed(path: "", reason: "\(error)")))
        }
        try send(.state(state))
        try send(.complete)
        status.phase = "committing"
        publish()
        try expect(.loaded)
        try send(.commit)
        committed = true
        let answer: MigrationMessage
        do { answer = try connection.receive() } catch { throw .outcomeUnknown("\(error)") }
        guard answer == .running else { throw .outcomeUnknown("the destination answered \(answer.name), not running") }
        let downtime = clock.now - pauseStart
        machine.remote.requestStop(reason: .migrated)
        status.phase = "completed"
        status.downtimeMs = Self.seconds(downtime) * 1000
        status.bytesSent = connection.bytesSent
        status.elapsedMs = Self.seconds(clock.now - start) * 1000
        if memoryHandedOver { status.memoryHandedOver = true }
        report?(status)
        return downtime
    }

    /// The hellos; returns whether RAM goes over as a memfd (both sides said so).
    private mutating func handshake() throws(MigrationError) -> Bool {
        let digest: String
        do { digest = try Machine.migrationCPUDigest() } catch { throw .machine(error) }
        let hello = MigrationHello(
            cpuDigest: digest,
            memoryRegions: machine.memory.ranges.map { MigrationHello.MemoryRegion(base: $0.base.rawValue, size: $0.size) },
            vcpuCount: machine.vcpuCount, memoryHandover: offersHandover)
        do {
            try connection.sendStreamHeader()
            try connection.send(.hello(hello))
            try connection.receiveStreamHeader()
        } catch { throw .wire(error) }
        let answer = try receive()
        guard case .hello(let theirs) = answer else { throw .unexpected(message: answer.name, expected: "hello") }
        guard theirs.version == MigrationWire.version else {
            throw .refused("the destination speaks protocol version \(theirs.version), this side \(MigrationWire.version)")
        }
        return offersHandover && theirs.memoryHandover
    }

    /// Whether to offer the memfd: allowed, on a Unix socket, and RAM is a memfd.
    private var offersHandover: Bool {
        options.memoryHandover && connection.isLocal && machine.memory.sharedDescriptor != nil
    }

    // MARK: Pages

    /// Sends the pages set in `pages` (with `everything`, every page of RAM:
    /// those not set as zero markers without reading them).
    private mutating func sendPages(_ pages: [DirtyPages], everything: Bool) throws(MigrationError) {
        var batch = PageBatch()
        let view = machine.memory.view
        for region in pages {
            let base = region.regionBase.rawValue
            let regionPages = machine.memory.ranges.first { $0.base == region.regionBase }.map { Int($0.size / pageSize) } ?? 0
            for (w, word) in region.bitmap.enumerated() {
                let first = w * 64
                guard first < regionPages else { break }
                let inWord = min(64, regionPages - first)
                if word == 0 {
                    if everything {
                        batch.appendZero(address: base + UInt64(first) * pageSize, count: UInt32(inWord))
                        status.zeroPages += UInt64(inWord)
                        if batch.isFull { try flush(&batch) }
                    }
                    continue
                }
                for bit in 0..<inWord {
                    let address = base + UInt64(first + bit) * pageSize
                    if word & (1 << UInt64(bit)) == 0 {
                        guard everything else { continue }
                        batch.appendZero(address: address)
                        status.zeroPages += 1
                    } else {
                        let hadData: Bool
                        do {
                            hadData = try batch.appendPage(address: address) { bytes throws(GuestMemoryError) in
                                try view.appendPage(at: GuestAddress(address), to: &bytes)
                            }
                        } catch {
                            throw .machine(.memory(error))
                        }
                        if hadData { status.pagesSent += 1 } else { status.zeroPages += 1 }
                    }
                    if batch.isFull { try flush(&batch) }
                }
            }
        }
        try flush(&batch)
    }

    private mutating func flush(_ batch: inout PageBatch) throws(MigrationError) {
        guard !batch.isEmpty else { return }
        try send(.pages(batch))
        batch = PageBatch()
        guard clock.now - start < options.timeout || pausedHere else { throw .timedOut(options.timeout) }
        pace()
    }

    /// Sleeps as long as the bandwidth limit asks.
    private func pace() {
        guard let limit = options.bandwidthLimit, limit > 0 else { return }
        let due = Double(connection.bytesSent) / Double(limit)
        let elapsed = Self.seconds(clock.now - start)
        if due > elapsed { MigrationThrottle.sleep(nanoseconds: Int64((due - elapsed) * 1e9)) }
    }

    // MARK: Messages

    private mutating func send(_ message: MigrationMessage) throws(MigrationError) {
        do { try connection.send(message) } catch {
            // The destination may have said why before it closed.
            if let reason = try? connection.receive(), case .error(let text) = reason { throw .peer(text) }
            throw .wire(error)
        }
        status.bytesSent = connection.bytesSent
        status.elapsedMs = Self.seconds(clock.now - start) * 1000
    }

    private func receive() throws(MigrationError) -> MigrationMessage {
        let message: MigrationMessage
        do { message = try connection.receive() } catch { throw .wire(error) }
        if case .error(let text) = message { throw .peer(text) }
        return message
    }

    private func expect(_ wanted: MigrationMessage) throws(MigrationError) {
        let message = try receive()
        guard message == wanted else { throw .unexpected(message: message.name, expected: wanted.name) }
    }

    private func publish() {
        var snapshot = status
        snapshot.elapsedMs = Self.seconds(clock.now - start) * 1000
        report?(snapshot)
    }

    // MARK: Helpers

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func count(_ pages: [DirtyPages]) -> UInt64 {
        pages.reduce(0) { $0 + $1.bitmap.reduce(0) { $0 + UInt64($1.nonzeroBitCount) } }
    }

    static func union(_ a: [DirtyPages], _ b: [DirtyPages]) -> [DirtyPages] {
        guard !a.isEmpty else { return b }
        return b.map { region in
            guard let other = a.first(where: { $0.regionBase == region.regionBase }) else { return region }
            var merged = region
            for i in merged.bitmap.indices where i < other.bitmap.count { merged.bitmap[i] |= other.bitmap[i] }
            return merged
        }
    }
}
