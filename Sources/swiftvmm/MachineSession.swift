import ArgumentParser
import GDBStub
import Logging
import SwiftVMM
import VMMConsole

#if canImport(Glibc)
    import Glibc
#endif

/// One machine run from the command line, for `run` and `restore` alike: the
/// console (stdin to COM1; at a terminal, raw mode and the Ctrl-A commands),
/// the vCPU on a thread of its own, the report on stderr and the exit status.
struct MachineSession {
    /// Where Ctrl-A s saves the machine when `--snapshot-dir` is not given.
    static let defaultSnapshotDirectory = "swiftvmm-snapshot"

    let machine: Machine
    let timeout: Duration?
    let stats: Bool
    let snapshotDirectory: String
    /// Where the GDB stub listens, if it does, and whether the guest waits for the debugger.
    var gdb: GDBEndpoint? = nil
    var gdbWait = false
    /// The seccomp mode and privileges the main thread is confined with once the threads are up.
    var sandbox = SandboxOptions()

    /// Makes swift-log write to stderr and returns the VMM's logger.
    static func bootstrapLogging(level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .trace
            return handler
        }
        var logger = Logger(label: "swiftvmm")
        logger.logLevel = level
        return logger
    }

    /// Runs the machine to its end and exits with its status (never returns normally).
    func run() throws {
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
        let commands = ConsoleCommands(machine: machine, directory: snapshotDirectory)
        var console: ConsoleInput?
        do {
            console = try ConsoleInput(
                fileDescriptor: STDIN_FILENO, mode: interactive ? .terminal : .passthrough,
                onInput: { remote.kick() }, onQuit: { remote.requestStop() },
                onHelp: { Self.writeToStandardError(ConsoleEscape.helpText) }, onPause: { commands.togglePause() },
                onSnapshot: { commands.snapshot() })
        } catch {
            Self.report("warning: console input unavailable: \(error)")
        }
        machine.serialInput = console
        defer {
            console?.stop()
            terminal?.restore()
        }

        let debugTarget = gdb.map { _ in MachineDebugTarget(machine: machine) }
        var stub: GDBServer?
        if let gdb, let debugTarget {
            // Paused before the run, the guest parks before its first instruction until the debugger continues.
            if gdbWait { machine.pause() }
            do {
                stub = try GDBServer(endpoint: gdb, target: debugTarget) { Self.report("gdb: \($0)") }
                try stub?.start()
            } catch {
                Self.report("error: \(error)")
                throw ExitCode(1)
            }
            Self.report("GDB stub listening on \(gdb)\(gdbWait ? "; the guest waits for a debugger" : "")")
        }
        defer { stub?.stop() }
        try sandbox.confine()

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
            reason = try machine.runOnVCPUThread(timeout: timeout)
            debugTarget?.machineEnded(reason)
        } catch {
            debugTarget?.machineEnded(nil)
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

    static func writeToStandardError(_ text: String) {
        var text = text
        text.withUTF8 { buffer in _ = Glibc.write(STDERR_FILENO, buffer.baseAddress, buffer.count) }
    }

    static func report(_ message: String) {
        writeToStandardError(message.split(separator: "\n", omittingEmptySubsequences: false).map { "swiftvmm: \($0)\n" }.joined())
    }
}

/// What Ctrl-A p and Ctrl-A s do; runs on the console's reader thread, which
/// may pause the machine (the vCPUs run on threads of their own).
final class ConsoleCommands: @unchecked Sendable {
    // Unchecked: `Machine`'s pause, resume, run state and snapshot are safe
    // from any thread but a vCPU's, and only the console thread calls these.
    // Weak: the machine holds the console input (`serialInput`), whose
    // callbacks hold this; a strong reference would make a cycle.
    private weak var machine: Machine?
    private let directory: String

    init(machine: Machine, directory: String) {
        self.machine = machine
        self.directory = directory
    }

    /// Ctrl-A p: pauses a running machine, resumes a paused one.
    func togglePause() {
        guard let machine else { return }
        if machine.runState == .paused {
            machine.resume()
            MachineSession.report("resumed")
        } else {
            machine.pause()
            MachineSession.report("paused (Ctrl-A p resumes, Ctrl-A s saves a snapshot, Ctrl-A x quits)")
        }
    }

    /// Ctrl-A s: saves the machine to the snapshot directory, then lets it go on
    /// (a machine that was paused stays paused).
    func snapshot() {
        guard let machine else { return }
        let wasPaused = machine.runState == .paused
        if !wasPaused { machine.pause() }
        defer { if !wasPaused { machine.resume() } }
        do {
            let statistics = try machine.snapshot(to: directory)
            MachineSession.report(
                "snapshot saved to \(directory) (\(statistics.pagesWritten) pages of RAM); `swiftvmm restore \(directory)` continues it")
        } catch {
            MachineSession.report("snapshot failed: \(error)")
        }
    }
}
