import GuestMemory
import Migration
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

extension Machine {
    /// Waits at `address` for one source (`Machine.migrate(to:)`, `PUT /migrate`)
    /// and returns the machine it sent, built and ready to `run()`: see
    /// `receiveMigration(over:io:options:)`. A Unix socket file it created is removed.
    public static func receiveMigration(
        at address: MigrationAddress, io: MachineIO = MachineIO(), options: IncomingMigrationOptions = IncomingMigrationOptions(),
        acceptTimeout: Duration? = nil, listening: (() -> Void)? = nil
    ) throws(MigrationError) -> Machine {
        let listener: Int32
        do { listener = try MigrationSocket.listen(address) } catch { throw .wire(error) }
        defer {
            close(listener)
            if case .unix(let path) = address { unlink(path) }
        }
        listening?()
        let fd: Int32
        do { fd = try MigrationSocket.accept(listener, timeout: acceptTimeout) } catch { throw .wire(error) }
        return try receiveMigration(over: MigrationConnection(fd: fd, receiveTimeout: options.receiveTimeout), io: io, options: options)
    }

    /// The destination side of a migration over `connection`: checks the
    /// source's hello (protocol version, CPU features, RAM size), takes the
    /// pages into fresh RAM as they come, then the state; builds the machine
    /// (as a restore does) and says `loaded`; and returns it only once the
    /// source has sent `commit`, after answering `running`. The caller runs it
    /// at once. Anything else (a broken stream, a bad checksum, the source
    /// giving up, no `commit`) throws and drops what was received: the guest
    /// then still runs on the source.
    public static func receiveMigration(
        over connection: MigrationConnection, io: MachineIO = MachineIO(), options: IncomingMigrationOptions = IncomingMigrationOptions()
    ) throws(MigrationError) -> Machine {
        do throws(MigrationError) {
            return try receive(over: connection, io: io, options: options)
        } catch {
            // Tell the source why, unless it is the one that gave up or is gone.
            switch error {
            case .peer, .wire(.endOfStream), .wire(.io): break
            default: connection.sendErrorQuietly("\(error)")
            }
            connection.shutdown()
            throw error
        }
    }

    private static func receive(
        over connection: MigrationConnection, io: MachineIO, options: IncomingMigrationOptions
    ) throws(MigrationError) -> Machine {
        func next() throws(MigrationError) -> MigrationMessage {
            let message: MigrationMessage
            do { message = try connection.receive() } catch { throw .wire(error) }
            if case .error(let text) = message { throw .peer(text) }
            return message
        }
        // Our header first, whatever the source's says, so that a source of
        // another version reads our version and our error.
        do { try connection.sendStreamHeader() } catch { throw .wire(error) }
        do { try connection.receiveStreamHeader() } catch { throw .wire(error) }
        let first = try next()
        guard case .hello(let hello) = first else { throw .unexpected(message: first.name, expected: "hello") }
        let digest: String
        if let claimed = options.cpuDigestOverride {
            digest = claimed
        } else {
            do { digest = try migrationCPUDigest() } catch { throw .machine(error) }
        }
        guard hello.version == MigrationWire.version else {
            throw .refused("the source's hello is of protocol version \(hello.version), this side speaks \(MigrationWire.version)")
        }
        guard hello.cpuDigest == digest else {
            throw .refused("the source's CPU features (\(hello.cpuDigest)) differ from this host's (\(digest))")
        }
        guard hello.memorySize <= options.maximumMemory else {
            throw .refused("the machine has \(hello.memorySize) bytes of RAM, this destination takes at most \(options.maximumMemory)")
        }
        guard (1...MachineConfiguration.maximumVCPUCount).contains(hello.vcpuCount), !hello.memoryRegions.isEmpty,
            hello.memoryRegions.count <= 16
        else { throw .refused("the source's hello names \(hello.vcpuCount) vCPUs and \(hello.memoryRegions.count) RAM ranges") }
        let layout = hello.memoryRegions.map { (base: GuestAddress($0.base), size: $0.size) }
        // A source on this host with memfd-backed RAM offers the memfd itself
        // (a local live upgrade); accepted when the connection can carry it.
        let handover = hello.memoryHandover && options.acceptsMemoryHandover && connection.isLocal
        let ours = MigrationHello(
            cpuDigest: digest, memoryRegions: [MigrationHello.MemoryRegion(base: 0, size: options.maximumMemory)], vcpuCount: 0,
            memoryHandover: handover)
        let memory: GuestMemory
        if handover {
            do { try connection.send(.hello(ours)) } catch { throw .wire(error) }
            memory = try receiveHandedOverMemory(layout: layout, size: hello.memorySize, next: next, connection: connection)
        } else {
            do { memory = try GuestMemory(regions: layout) } catch { throw .refused("the source's RAM layout: \(error)") }
            do { try connection.send(.hello(ours)) } catch { throw .wire(error) }
        }

        let view = memory.view
        var state: [UInt8]?
        receiving: while true {
            let message = try next()
            switch message {
            case .pages where handover:
                // The pages are the source's own until commit: nothing here writes them.
                throw .unexpected(message: "pages", expected: "state or complete (RAM came as a memfd)")
            case .pages(let batch):
                do throws(GuestMemoryError) {
                    try batch.forEachRun { run, data throws(GuestMemoryError) in
                        if let data {
                            try view.write(data, at: GuestAddress(run.address))
                        } else {
                            // Zeros without touching the pages: anonymous memory given back reads as zeros.
                            try view.releasePages(at: GuestAddress(run.address), count: UInt64(run.pageCount))
                        }
                    }
                } catch { throw .refused("a page batch outside the machine's RAM: \(error)") }
            case .endOfRound: continue
            case .state(let bytes): state = bytes
            case .complete: break receiving
            default: throw .unexpected(message: message.name, expected: "pages, endOfRound, state or complete")
            }
        }
        guard let state else { throw .unexpected(message: "complete", expected: "state first") }
        let snapshot: MachineSnapshot
        do { snapshot = try MachineSnapshot(stateFile: state, path: "the migration stream") } catch { throw .machine(.snapshot(error)) }
        guard snapshot.memoryRegions.map({ MigrationHello.MemoryRegion(base: $0.base, size: $0.size) }) == hello.memoryRegions else {
            throw .refused("the state's RAM layout differs from the hello's")
        }
        let machine: Machine
        do { machine = try restore(snapshot, memory: memory, io: io) } catch { throw .machine(error) }
        do { try connection.send(.loaded) } catch { throw .wire(error) }
        let decision = try next()
        guard decision == .commit else { throw .unexpected(message: decision.name, expected: "commit") }
        // Committed: the guest is ours now. A source that misses this answer keeps its copy paused.
        try? connection.send(.running)
        return machine
    }

    /// Takes the source's RAM as the memfd that comes with its `memoryHandover`
    /// message and maps it shared, after checking it: exactly the layout's
    /// size, sealed against shrinking. Nothing is written to it; if anything
    /// later fails, the mapping simply goes (the source's guest is unharmed).
    private static func receiveHandedOverMemory(
        layout: [(base: GuestAddress, size: UInt64)], size: UInt64, next: () throws(MigrationError) -> MigrationMessage,
        connection: MigrationConnection
    ) throws(MigrationError) -> GuestMemory {
        let message = try next()
        let fd = connection.takeReceivedDescriptor()
        defer { if fd >= 0 { close(fd) } }
        guard case .memoryHandover(let announced) = message else {
            throw .unexpected(message: message.name, expected: "memoryHandover")
        }
        guard fd >= 0 else { throw .refused("the memoryHandover message came without a descriptor") }
        guard announced == size else { throw .refused("the memfd is announced as \(announced) bytes, the hello's RAM is \(size)") }
        do { return try GuestMemory(regions: layout, sharingMemfd: fd) } catch { throw .refused("the handed-over RAM: \(error)") }
    }
}
