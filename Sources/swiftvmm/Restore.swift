import ArgumentParser
import Logging
import SwiftVMM
import SwiftVMMConfig

/// `swiftvmm restore DIR`: a machine saved by Ctrl-A s (or `Machine.snapshot(to:)`)
/// continues exactly where it stopped, in this process.
struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a machine from a snapshot directory (its state and memory files).",
        discussion: """
            The memory file is mapped copy-on-write: restoring costs the same for any RAM size, \
            the guest's writes stay in this process, and the snapshot is never modified, so any \
            number of processes may restore it at once. COM1 goes to stdout and the exit status \
            is as for `run`; a snapshot that cannot be read (missing, truncated, damaged, of \
            another format version) is one line on stderr and status 64.
            """)

    @Argument(help: "The snapshot directory.")
    var directory: String

    @OptionGroup var session: SessionOptions

    @OptionGroup(title: "Sandbox") var sandbox: SandboxOptions

    /// The options as a spec, checked by the same rules as `run`'s.
    func resolvedSpec() throws -> ResolvedSpec {
        let spec = MachineSpec(
            timeout: session.timeout, serial2: session.serial2, debugcon: session.debugcon, logLevel: session.logLevel?.rawValue,
            stats: session.stats ? true : nil, snapshotDir: session.snapshotDir)
        do { return try spec.resolve(source: .flags) } catch { throw ValidationError("\(error)") }
    }

    func validate() throws { _ = try resolvedSpec() }

    func run() throws {
        let resolved = try resolvedSpec()
        let logger = MachineSession.bootstrapLogging(level: resolved.logLevel.loggerLevel)
        try sandbox.prepare(
            landlockPolicy: sandbox.sessionPolicy(snapshotDirectory: resolved.snapshotDirectory ?? MachineSession.defaultSnapshotDirectory))
        var io = MachineIO(logger: logger)
        do { io.serial2Output = try resolved.serial2Path.map { try FileSerialOutput(path: $0) } } catch {
            throw ValidationError("--serial2: \(error)")
        }
        do { io.debugConsoleOutput = try resolved.debugconPath.map { try FileSerialOutput(path: $0) } } catch {
            throw ValidationError("--debugcon: \(error)")
        }
        let machine: Machine
        do { machine = try Machine.restore(from: directory, io: io) } catch {
            // What the user handed us is unusable: a usage error. KVM refusing is not.
            if case .snapshot = error { throw ValidationError("\(error)") }
            if case .invalidVCPUCount = error { throw ValidationError("\(directory): \(error)") }
            MachineSession.report("error: \(error)")
            throw ExitCode(1)
        }
        try MachineSession(
            machine: machine, timeout: resolved.timeout, stats: resolved.stats,
            snapshotDirectory: resolved.snapshotDirectory ?? MachineSession.defaultSnapshotDirectory, sandbox: sandbox
        ).run()
    }
}
