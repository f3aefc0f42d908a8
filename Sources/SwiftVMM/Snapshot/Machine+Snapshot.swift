import Devices
import FoundationEssentials
import GuestMemory
import KVM
import SystemPackage
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// The files of a snapshot directory.
public enum SnapshotLayout {
    /// The state file: `SnapshotFile` framing around the JSON `MachineSnapshot`.
    public static let stateFileName = "state"
    /// Guest RAM, sparse: pages the guest never touched are holes.
    public static let memoryFileName = "memory"
}

extension Machine {
    // MARK: Capturing and restoring state

    /// Every vCPU's, the VM's and every device's state, with the machine
    /// quiescent (paused, or not running).
    ///
    /// Each vCPU first finishes the port or MMIO access it exited for: KVM
    /// completes one only on the next `KVM_RUN`, which `completePendingIO()`
    /// performs with `immediate_exit` set, so the state saved is at an
    /// instruction boundary and the access is not repeated after a restore.
    public func captureState() throws(MachineError) -> MachineSnapshot {
        guard lifecycle.isQuiescent else { throw .notQuiescent(operation: "save the machine's state") }
        let msrs = try migratableMSRIndices()
        var vcpus: [VCPUState] = []
        for runner in runners {
            // A `rep ins/outs` of many elements goes on with its next exit:
            // handle each (the devices see them as in a run) until the
            // instruction is done.
            while true {
                let exit: VMExit?
                do { exit = try runner.vcpu.completePendingIO() } catch { throw .kvm(error) }
                guard let exit else { break }
                _ = try runner.handle(exit)
            }
            do { vcpus.append(try runner.vcpu.saveState(msrIndices: msrs)) } catch { throw .kvm(error) }
        }
        let vmState: VMState
        do { vmState = try vm.saveState() } catch { throw .kvm(error) }
        var states: MachineSnapshot.DeviceStates?
        withBuses { states = devices.states }
        guard let states else { preconditionFailure("withBuses runs its body") }
        return MachineSnapshot(
            hardware: hardware, boot: bootRecord,
            memoryRegions: memory.ranges.map { MachineSnapshot.MemoryRegion(base: $0.base.rawValue, size: $0.size) }, vm: vmState,
            vcpus: vcpus, devices: states, specification: specification)
    }

    /// How many exits of one string instruction a reset lets go by before it
    /// overwrites the vCPU's state anyway (a `rep insb` of 64 KiB takes 16).
    static let pendingAccessRounds = 64

    /// The MSRs that travel with a vCPU, asked of KVM once per machine: those
    /// of KVM's list a snapshot needs that this host lets vCPU 0 read.
    func migratableMSRIndices() throws(MachineError) -> [UInt32] {
        if let known = msrIndexCache.withLock({ $0 }) { return known }
        let accepted: [UInt32]
        do { accepted = try bootstrap.vcpu.migratableMSRs(from: try kvm.migratableMSRIndices()).accepted } catch { throw .kvm(error) }
        msrIndexCache.withLock { $0 = accepted }
        return accepted
    }

    /// Puts `snapshot`'s vCPU, VM and device state into this machine, whose
    /// RAM already holds the snapshot's memory.
    func apply(_ snapshot: MachineSnapshot) throws(MachineError) {
        guard lifecycle.isQuiescent else { throw .notQuiescent(operation: "restore the machine's state") }
        // A vCPU that exited for a port or MMIO access finishes it on its next
        // KVM_RUN, writing the old instruction's result and RIP over the state
        // put back here: finish it first (its result is about to be replaced).
        // A long `rep ins/outs` may take several rounds; its data no longer matters.
        for runner in runners {
            for _ in 0..<Self.pendingAccessRounds {
                let exit: VMExit?
                do { exit = try runner.vcpu.completePendingIO() } catch { throw .kvm(error) }
                if exit == nil { break }
            }
        }
        do throws(KVMError) {
            // The PICs and IOAPIC, then the vCPUs (their LAPICs deliver into
            // the IOAPIC), then the PIT and clock: loading the PIT starts its
            // timer, and a tick must not reach a LAPIC that is overwritten after.
            try vm.restoreInterruptControllers(from: snapshot.vm)
            for (runner, state) in zip(runners, snapshot.vcpus) { try runner.vcpu.restoreState(state) }
            try vm.restoreTimers(from: snapshot.vm)
        } catch { throw .kvm(error) }
        var failure: DeviceStateError?
        withBuses {
            do throws(DeviceStateError) { try devices.restore(snapshot.devices) } catch { failure = error }
        }
        if let failure { throw .deviceState(failure) }
        lifecycle.prepareRun()
    }

    // MARK: Snapshots on disk

    /// Saves the machine to `directory` (created if missing): the state file
    /// and the sparse memory file. The machine must be quiescent: `pause()` it
    /// first if it runs. It can go on afterwards.
    @discardableResult
    public func snapshot(to directory: String) throws(MachineError) -> SnapshotStatistics {
        // The I/O thread must not complete a request between the state and the RAM.
        guard let virtio = devices.virtio else { return try writeSnapshot(to: directory) }
        return try virtio.withDevicesSuspended { () throws(MachineError) in try writeSnapshot(to: directory) }
    }

    private func writeSnapshot(to directory: String) throws(MachineError) -> SnapshotStatistics {
        let state = try captureState()
        if mkdir(directory, 0o700) != 0, errno != EEXIST { throw .snapshot(.io(path: directory, operation: "create", errno: errno)) }
        let memoryPath = directory + "/" + SnapshotLayout.memoryFileName
        let statePath = directory + "/" + SnapshotLayout.stateFileName
        // Encoded before anything is written, so that a state that cannot be saved leaves no files.
        let framed: [UInt8]
        do { framed = try state.stateFile() } catch { throw .snapshot(error) }
        let temporary = memoryPath + ".partial"
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(
                FilePath(temporary), .readWrite, options: [.create, .truncate, .closeOnExec], permissions: [.ownerReadWrite])
        } catch { throw .snapshot(.io(path: temporary, operation: "create", errno: SnapshotFile.code(error))) }
        let written: MemoryImageStatistics
        var info = stat()
        do {
            written = try memory.writeImage(to: fd.rawValue)
            guard fsync(fd.rawValue) == 0, fstat(fd.rawValue, &info) == 0 else {
                throw MachineError.snapshot(.io(path: temporary, operation: "write", errno: errno))
            }
        } catch {
            try? fd.close()
            unlink(temporary)
            if case let error as MachineError = error { throw error }
            if case let error as GuestMemoryError = error { throw .memory(error) }
            throw .snapshot(.io(path: temporary, operation: "write", errno: EIO))
        }
        try? fd.close()
        guard rename(temporary, memoryPath) == 0 else {
            unlink(temporary)
            throw .snapshot(.io(path: memoryPath, operation: "rename into place", errno: errno))
        }
        do { try SnapshotFile.write(framed, to: statePath) } catch { throw .snapshot(error) }
        logger.debug("snapshot in \(directory): \(written.pagesWritten) pages of RAM, \(framed.count) bytes of state")
        return SnapshotStatistics(
            pagesWritten: written.pagesWritten, memoryFileAllocatedBytes: UInt64(info.st_blocks) * 512, stateFileBytes: UInt64(framed.count)
        )
    }

    /// Reads and checks a snapshot's state file.
    public static func readSnapshotState(from directory: String) throws(SnapshotError) -> MachineSnapshot {
        let path = directory + "/" + SnapshotLayout.stateFileName
        return try MachineSnapshot(stateFile: try SnapshotFile.read(path), path: path)
    }

    /// A machine continuing exactly where the snapshot in `directory` stopped.
    ///
    /// The memory file is mapped copy-on-write (`MAP_PRIVATE`): restoring
    /// costs the same for 128 MiB as for 4 GiB, the guest's writes stay in
    /// this process, and the snapshot is never modified, so any number of
    /// machines (in this process or others) can be restored from it at once.
    /// `run()` continues the guest.
    public static func restore(from directory: String, io: MachineIO = MachineIO()) throws(MachineError) -> Machine {
        let snapshot: MachineSnapshot
        do { snapshot = try readSnapshotState(from: directory) } catch { throw .snapshot(error) }
        let path = directory + "/" + SnapshotLayout.memoryFileName
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec]) } catch {
            throw .snapshot(.io(path: path, operation: "open", errno: SnapshotFile.code(error)))
        }
        // GuestMemory keeps a duplicate of the descriptor for as long as it needs one.
        defer { try? fd.close() }
        let memory: GuestMemory
        do { memory = try GuestMemory(regions: snapshot.layout, mappingImage: fd.rawValue) } catch {
            throw .snapshot(.inconsistent("\(path): \(error)"))
        }
        return try restore(snapshot, memory: memory, io: io)
    }

    /// A machine built for `snapshot` around `memory`, which holds its RAM.
    static func restore(_ snapshot: MachineSnapshot, memory: consuming GuestMemory, io: MachineIO) throws(MachineError) -> Machine {
        let machine = try Machine(hardware: snapshot.hardware, io: io, memory: memory, contents: .restore(snapshot.boot))
        machine.specification = snapshot.specification
        try machine.apply(snapshot)
        return machine
    }
}

extension MachineSnapshot {
    /// Decodes and checks the bytes of a state file (`path` names it in errors):
    /// the framing, the checksum, the JSON, and that the parts agree. What a
    /// device or KVM accepts is checked again as each part is restored.
    public init(stateFile bytes: [UInt8], path: String) throws(SnapshotError) {
        let payload = try SnapshotFile.payload(of: bytes, path: path)
        do { self = try JSONDecoder().decode(MachineSnapshot.self, from: Data(payload)) } catch {
            throw .malformed(path: path, reason: SnapshotDecoding.describe(error))
        }
        try validate()
    }

    /// `payload` framed as a state file: header, length and checksum. For
    /// tools and fuzzers that make state files from JSON of their own.
    public static func stateFile(framing payload: [UInt8]) -> [UInt8] { SnapshotFile.frame(payload) }

    /// The bytes of a state file holding this state.
    public func stateFile() throws(SnapshotError) -> [UInt8] {
        do { return SnapshotFile.frame(Array(try JSONEncoder().encode(self))) } catch {
            throw .malformed(path: "", reason: "cannot encode: \(error)")
        }
    }

    /// The RAM layout as `GuestMemory` takes it.
    var layout: [(base: GuestAddress, size: UInt64)] { memoryRegions.map { (GuestAddress($0.base), $0.size) } }
}

/// Turns a decoding error into one line naming the field.
enum SnapshotDecoding {
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ context: DecodingError.Context) -> String {
            let names = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return names.isEmpty ? "the top level" : names.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let context): return "\(path(context)): expected \(type)"
        case .valueNotFound(let type, let context): return "\(path(context)): missing \(type)"
        case .keyNotFound(let key, let context): return "\(path(context)): missing field '\(key.stringValue)'"
        case .dataCorrupted(let context): return "\(path(context)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
