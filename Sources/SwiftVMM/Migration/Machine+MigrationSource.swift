import GuestMemory
import KVM
import Migration
import VMCore

extension Machine {
    /// Moves this running machine to the swiftvmm waiting at `address`
    /// (`swiftvmm serve --incoming`) while it keeps running: see
    /// `migrate(over:options:progress:)`. Call it from any thread but a vCPU's.
    public func migrate(
        to address: MigrationAddress, options: MigrationOptions = MigrationOptions(),
        progress: (@Sendable (MigrationProgress) -> Void)? = nil
    ) throws(MigrationError) -> MigrationReport {
        let connection: MigrationConnection
        do { connection = try MigrationConnection.connect(to: address, receiveTimeout: options.replyTimeout) } catch { throw .wire(error) }
        return try migrate(over: connection, options: options, progress: progress)
    }

    /// Pre-copy live migration over `connection`:
    ///
    /// 1. Both sides send a stream header and a hello; the destination refuses
    ///    another protocol version, other CPU features or more RAM than it takes.
    /// 2. Dirty logging starts (KVM's log, and `GuestMemory`'s for the VMM's
    ///    own writes); a first pass sends every page (untouched ones as zero markers).
    /// 3. Rounds send the pages dirtied meanwhile, until the pages left would
    ///    take no longer than `downtimeLimit` at the bandwidth measured; if
    ///    the guest dirties faster than that, auto-converge slows its vCPUs.
    /// 4. The guest pauses (vCPUs and the devices' I/O thread); the last dirty
    ///    pages, the whole machine state and `complete` go; the destination
    ///    builds the machine and says `loaded`.
    /// 5. This side sends `commit` (the point of no return) and waits for
    ///    `running`; then its own run ends with `StopReason.migrated`.
    ///
    /// Any failure before `commit` resumes the guest here (if the migration
    /// paused it) and throws: the guest never stops running for good here
    /// before the destination holds all of it. After `commit` the destination
    /// runs the guest as soon as it reads it; if its `running` never arrives
    /// (the connection broke in that instant) this side cannot know whether it
    /// did, so it does not resume the guest (that could run it twice) and throws
    /// `.outcomeUnknown` with the guest paused: the two-generals edge resolved
    /// towards "never twice", as QEMU's source stays paused after completion.
    public func migrate(
        over connection: MigrationConnection, options: MigrationOptions = MigrationOptions(),
        progress: (@Sendable (MigrationProgress) -> Void)? = nil
    ) throws(MigrationError) -> MigrationReport {
        guard
            migrationInProgress.withLock({ busy in
                defer { busy = true }; return !busy
            })
        else { throw .alreadyMigrating }
        defer { migrationInProgress.withLock { $0 = false } }
        var session = MigrationSourceSession(machine: self, connection: connection, options: options, progress: progress)
        do throws(MigrationError) {
            return try session.run()
        } catch {
            session.fail(error)
            throw error
        }
    }

    /// A digest of the CPU features KVM offers guests here, which the two
    /// sides of a migration compare: the feature words only (leaf 1's ECX and
    /// EDX, leaf 7's EBX, ECX and EDX, leaf 0xD.1's EAX, leaf 0x80000001's ECX
    /// and EDX). Other words vary from call to call on some hosts (APIC ids,
    /// cache topology of the CPU asked), and a guest never relies on them
    /// staying the same across a move.
    public static func migrationCPUDigest() throws(MachineError) -> String {
        let entries: [CPUIDEntry]
        do { entries = try KVMSystem().supportedCPUID() } catch { throw .kvm(error) }
        func entry(_ function: UInt32, _ index: UInt32 = 0) -> CPUIDEntry? {
            entries.first { $0.function == function && $0.index == index }
        }
        var words: [UInt32] = []
        words += entry(1).map { [$0.ecx, $0.edx] } ?? [0, 0]
        words += entry(7).map { [$0.ebx, $0.ecx, $0.edx] } ?? [0, 0, 0]
        words += entry(0xd, 1).map { [$0.eax] } ?? [0]
        words += entry(0x8000_0001).map { [$0.ecx, $0.edx] } ?? [0, 0]
        // Leaf 1 ECX bit 27 (OSXSAVE) mirrors the guest's CR4, not the host.
        words[0] &= ~(1 << 27)
        var bytes: [UInt8] = []
        for word in words { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: word >> (i * 8))) } }
        return "cpuid-features-crc32:" + String(CRC32.checksum(bytes), radix: 16)
    }

    /// Starts dirty logging for a migration: KVM's log on every slot (the
    /// slots are registered again with `KVM_MEM_LOG_DIRTY_PAGES`, which KVM
    /// allows on a live VM) and the log of the VMM's own writes, then clears both.
    func startMigrationDirtyLog() throws(MachineError) {
        memory.trackHostWrites()
        do { try vm.mapRAM(memory, logDirtyPages: true) } catch { throw .kvm(error) }
        _ = try takeDirtyPages()
    }

    /// Ends what `startMigrationDirtyLog()` started, for a machine that did
    /// not track dirty pages before (a failed migration leaves it as it was).
    func stopMigrationDirtyLog() {
        guard !trackDirtyPages else { return }
        // Slot by slot, each on its own: a failure leaves the others restored.
        for (slot, mapping) in memory.hostMappings.enumerated() {
            try? vm.setUserMemoryRegion(
                slot: UInt32(slot), guestAddress: mapping.guestBase, size: mapping.size, hostAddress: mapping.hostAddress,
                logDirtyPages: false)
        }
    }

    /// Flushes the serial outputs with the buses held, so that everything the
    /// guest printed here is out before the destination prints more.
    func flushOutputsForMigration() { withBuses { devices.flushOutputs() } }
}
