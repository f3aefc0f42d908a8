import Devices
import Firmware
import Foundation
import GuestMemory
import HostSupport
import KVM
import Testing
import VMCore

@testable import SwiftVMM

/// A machine's life: pause and resume, snapshots on disk restored into new
/// machines, in-memory images with clones and resets. The contract is
/// continuation equivalence: however a guest is interrupted, saved and
/// restored, it ends with the output, stop reason and state of a run that
/// never was.
@Suite(.serialized) struct SnapshotTests {
    /// What a run (or a run's continuation) produced.
    struct Outcome: Equatable, CustomStringConvertible {
        var output: String
        var reason: StopReason
        var description: String { "\(reason) after \(output.debugDescription)" }
    }

    static func configuration(_ guest: FirmwareImage, vcpus: Int = 1, output: SerialBufferOutput) -> MachineConfiguration {
        // The ticker and the SMP guest need the PC's interrupt controllers and PIT.
        let pc = guest.name.hasPrefix("protectedmode/")
        return MachineConfiguration(
            guest: .firmware(guest), memorySize: 16 << 20, serialOutput: output, platform: pc ? .pc : nil, vcpuCount: vcpus)
    }

    /// Runs `machine` exit by exit, at most `exits` of them; returns why it stopped, if it did.
    static func advance(_ machine: Machine, exits: Int) throws -> StopReason? {
        try machine.withDeadline(.seconds(30)) { () throws -> StopReason? in
            for _ in 0..<max(exits, 0) {
                if let reason = try machine.dispatch(try machine.nextExit()) { return reason }
            }
            return nil
        }
    }

    /// A fresh directory under the temporary directory, removed by the caller.
    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "swiftvmm-snapshot-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The run that never was: `guest` from start to end, its exits counted.
    static func uninterrupted(_ guest: FirmwareImage, vcpus: Int = 1) throws -> (outcome: Outcome, exits: Int, machine: Machine) {
        let output = SerialBufferOutput()
        let machine = try Machine(configuration(guest, vcpus: vcpus, output: output))
        var exits = 0
        let reason = try machine.withDeadline(.seconds(30)) { () throws -> StopReason in
            while true {
                exits += 1
                if let reason = try machine.dispatch(try machine.nextExit()) { return reason }
            }
        }
        return (Outcome(output: output.text, reason: reason), exits, machine)
    }

    /// Runs `guest` for `exits` exits, saves it to a directory, restores that
    /// into a new machine and runs it to its end: the output before the
    /// snapshot joined with the restored machine's is the outcome.
    static func interrupted(_ guest: FirmwareImage, after exits: Int) throws -> (outcome: Outcome, restored: Machine) {
        let before = SerialBufferOutput()
        let machine = try Machine(configuration(guest, output: before))
        if let reason = try advance(machine, exits: exits) { Issue.record("\(guest.name) stopped (\(reason)) before exit \(exits)") }
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try machine.snapshot(to: directory)
        let after = SerialBufferOutput()
        let restored = try Machine.restore(from: directory, io: MachineIO(serialOutput: after))
        let reason = try restored.run(timeout: .seconds(30))
        return (Outcome(output: before.text + after.text, reason: reason), restored)
    }

    // MARK: Continuation equivalence

    @Test func theDemoGuestSavedAtEveryFewExitsEndsAsAnUninterruptedRun() throws {
        let reference = try Self.uninterrupted(.demo)
        #expect(reference.outcome.reason == .debugExit(status: 0))
        let finalRegisters = try reference.machine.registers()
        // Every 23rd exit: real, protected and long mode, ring 0 and ring 3,
        // before and after the trap, string output among them.
        for exits in stride(from: 1, to: reference.exits, by: 23) {
            let run = try Self.interrupted(.demo, after: exits)
            #expect(run.outcome == reference.outcome, "snapshot after exit \(exits)")
            let registers = try run.restored.registers()
            #expect(registers.rip == finalRegisters.rip && registers.rsp == finalRegisters.rsp, "after exit \(exits)")
            #expect(
                try run.restored.specialRegisters().cr3 == reference.machine.specialRegisters().cr3
                    && run.restored.specialRegisters().cs == reference.machine.specialRegisters().cs, "after exit \(exits)")
        }
    }

    @Test func stringIOSavedAtEachOfItsExitsIsNeitherRepeatedNorLost() throws {
        let reference = try Self.uninterrupted(.realRepOutsb)
        #expect(reference.outcome.reason == .debugExit(status: 0))
        let final = try reference.machine.registers()
        for exits in 1..<reference.exits {
            let run = try Self.interrupted(.realRepOutsb, after: exits)
            #expect(run.outcome == reference.outcome, "snapshot after exit \(exits)")
            let registers = try run.restored.registers()
            #expect(registers.rcx & 0xffff == final.rcx & 0xffff && registers.rsi & 0xffff == final.rsi & 0xffff, "after exit \(exits)")
        }
    }

    @Test func aGuestDrivenByPITInterruptsCarriesOnAfterARestore() throws {
        let reference = try Self.uninterrupted(.protectedTicker)
        #expect(reference.outcome.reason == .debugExit(status: 0x30))
        let lines = reference.outcome.output.split(separator: "\n")
        #expect(lines.count == 40 && lines.first?.hasPrefix("tick 01 sum 9e3779b9") == true, "\(reference.outcome.output)")
        let table = try reference.machine.memory.read(count: 41 * 4096, at: GuestAddress(0x200000))
        // Early (while the guest sets up the IOAPIC and PIT: the timer may be
        // programmed but not yet started) and between ticks, with the PIT
        // counting and an interrupt possibly pending in the IOAPIC or LAPIC.
        for exits in [3, 6, 9, 12, 40, 150, 400, reference.exits - 30] where exits < reference.exits {
            let run = try Self.interrupted(.protectedTicker, after: exits)
            #expect(run.outcome == reference.outcome, "snapshot after exit \(exits)")
            #expect(try run.restored.memory.read(count: 41 * 4096, at: GuestAddress(0x200000)) == table, "after exit \(exits)")
        }
    }

    @Test func bytesWaitingInTheUARTsReceiveFIFOSurviveARestore() throws {
        let output = SerialBufferOutput()
        let machine = try Machine(Self.configuration(.realSerialIn, output: output))
        #expect(machine.serial.enqueueInput(Array("snapshot me\n".utf8)) == 12)
        // The guest reads LSR, then RBR, then echoes: three exits a byte.
        #expect(try Self.advance(machine, exits: 9) == nil)
        #expect(output.text == "SNA")
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try machine.snapshot(to: directory)
        #expect(try Machine.readSnapshotState(from: directory).devices.com1.receiveFIFO.count == 9)
        let after = SerialBufferOutput()
        let restored = try Machine.restore(from: directory, io: MachineIO(serialOutput: after))
        #expect(try restored.run(timeout: .seconds(10)) == .debugExit(status: 0))
        #expect(output.text + after.text == "SNAPSHOT ME\n")
    }

    @Test func aTwoVCPUGuestPausedWhileRunningIsSavedAndFinishesElsewhere() throws {
        let output = SerialBufferOutput()
        let machine = try Machine(Self.configuration(.protectedSmp, vcpus: 2, output: output))
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let runner = Runner(machine)
        // Paused once the bootstrap processor runs (before the AP starts,
        // while it runs or after), the two halves make up one whole run.
        let patience = ContinuousClock.now + .seconds(30)
        while output.text.isEmpty, ContinuousClock.now < patience { usleep(200) }
        machine.pause()
        #expect(machine.runState == .paused)
        let printedAtPause = output.text
        try machine.snapshot(to: directory)
        #expect(output.text == printedAtPause, "nothing runs while the machine is paused")
        machine.requestStop()
        machine.resume()
        let first = try runner.finish()
        #expect(first == .stopRequested || first == .debugExit(status: 2), "\(first)")
        let after = SerialBufferOutput()
        let restored = try Machine.restore(from: directory, io: MachineIO(serialOutput: after))
        #expect(restored.vcpuCount == 2)
        let reason = try restored.run(timeout: .seconds(30))
        let state = try Machine.readSnapshotState(from: directory)
        #expect(state.vcpus.count == 2)
        if first == .stopRequested {
            #expect(reason == .debugExit(status: 2), "\(output.text)|\(after.text)")
            let lines = (output.text + after.text).split(separator: "\n")
            #expect(lines == ["cpu 00 bsp", "cpu 01 ap", "smp: 02 cpus"], "\(printedAtPause)|\(output.text)|\(after.text)")
        }
    }

    // MARK: Pause and resume

    @Test func pauseParksTheVCPUsAndResumeLetsThemFinish() throws {
        let output = SerialBufferOutput()
        let machine = try Machine(Self.configuration(.protectedTicker, output: output))
        #expect(machine.runState == .notStarted)
        let runner = Runner(machine)
        // Let it tick a few times, then hold it.
        let patience = ContinuousClock.now + .seconds(30)
        while output.text.split(separator: "\n").count < 3, ContinuousClock.now < patience { usleep(1000) }
        machine.pause()
        #expect(machine.runState == .paused)
        let exits = machine.exitCount
        let printed = output.text
        usleep(100_000)
        #expect(machine.exitCount == exits, "a paused vCPU takes no exits")
        #expect(output.text == printed)
        // A paused machine can be inspected: its state is consistent.
        let state = try machine.captureState()
        #expect(state.vcpus.count == 1)
        machine.resume()
        #expect(try runner.finish() == .debugExit(status: 0x30))
        #expect(output.text.split(separator: "\n").count == 40)
        #expect(machine.runState == .stopped)
    }

    @Test func stateCannotBeTakenWhileTheGuestRuns() throws {
        let output = SerialBufferOutput()
        let machine = try Machine(Self.configuration(.protectedTicker, output: output))
        let runner = Runner(machine)
        let patience = ContinuousClock.now + .seconds(30)
        while machine.runState != .running, ContinuousClock.now < patience { usleep(100) }
        let refused = #expect(throws: MachineError.self) { try machine.captureState() }
        #expect(refused?.description == "cannot save the machine's state while vCPUs are running: pause the machine first")
        #expect(try runner.finish() == .debugExit(status: 0x30))
    }

    // MARK: Clones and fixtures

    @Test func twentyConcurrentRestoresOfOneSnapshotEndAlikeAndLeaveItUntouched() throws {
        let output = SerialBufferOutput()
        let machine = try Machine(Self.configuration(.protectedTicker, output: output))
        #expect(try Self.advance(machine, exits: 60) == nil)
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try machine.snapshot(to: directory)
        let files = [SnapshotLayout.stateFileName, SnapshotLayout.memoryFileName].map { directory + "/" + $0 }
        let before = try files.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        let reference = try Self.uninterrupted(.protectedTicker).outcome.output
        let results = ThreadLock<[String]>([])
        let threads = try (0..<20).map { _ in
            try HostThread.spawn(name: "clone") {
                let after = SerialBufferOutput()
                let text: String
                do {
                    let clone = try Machine.restore(from: directory, io: MachineIO(serialOutput: after))
                    let reason = try clone.run(timeout: .seconds(60))
                    text =
                        reason == .debugExit(status: 0x30)
                        ? output.text + after.text : "stopped: \(reason) after \(after.text)\n\(clone.cpuStateReport())"
                } catch { text = "failed: \(error)" }
                results.withLock { $0.append(text) }
            }
        }
        for thread in threads { thread.join() }
        let texts = results.withLock { $0 }
        #expect(texts.count == 20)
        for text in texts { #expect(text == reference) }
        #expect(try files.map { try Data(contentsOf: URL(fileURLWithPath: $0)) } == before, "restores never write the snapshot")
    }

    @Test func aResetPutsBackExactlyTheDirtiedPagesAndTheStateOfTheImage() throws {
        let output = SerialBufferOutput()
        let machine = try Machine(Self.configuration(.protectedTicker, output: output))
        #expect(try Self.advance(machine, exits: 40) == nil)
        let image = try machine.makeImage()
        let printedBefore = output.text
        let after = SerialBufferOutput()
        let clone = try Machine.clone(image, io: MachineIO(serialOutput: after))
        #expect(try clone.run(timeout: .seconds(30)) == .debugExit(status: 0x30))
        let firstRun = after.text
        #expect(try !clone.memory.matches(image.memory), "the guest wrote its table")
        // The VMM's own writes count too.
        try clone.memory.write([0xde, 0xad], at: GuestAddress(0x00f0_0000))
        let statistics = try clone.reset(to: image)
        #expect(try clone.memory.matches(image.memory), "every page is the image's again")
        #expect(statistics.pagesRestored >= 30 && statistics.pagesRestored < 200, "\(statistics)")
        #expect(try clone.run(timeout: .seconds(30)) == .debugExit(status: 0x30))
        #expect(after.text == firstRun + firstRun, "the reset clone runs the same continuation again")
        #expect(printedBefore + firstRun == (try Self.uninterrupted(.protectedTicker).outcome.output))
    }

    @Test func onlyAMachineThatTracksItsPagesCanBeReset() throws {
        let machine = try Machine(Self.configuration(.realHello, output: SerialBufferOutput()))
        let image = try machine.makeImage()
        let refused = #expect(throws: MachineError.self) { try machine.reset(to: image) }
        #expect(
            refused?.description
                == "this machine does not track the pages its guest writes: reset a clone made with Machine.clone(_:)")
    }

    // MARK: Bad snapshots

    /// A saved ticker, and a way to damage it.
    struct Saved {
        let directory: String
        var statePath: String { directory + "/" + SnapshotLayout.stateFileName }
        var memoryPath: String { directory + "/" + SnapshotLayout.memoryFileName }

        init() throws {
            directory = try SnapshotTests.temporaryDirectory()
            let machine = try Machine(SnapshotTests.configuration(.protectedTicker, output: SerialBufferOutput()))
            _ = try SnapshotTests.advance(machine, exits: 20)
            try machine.snapshot(to: directory)
        }

        func remove() { try? FileManager.default.removeItem(atPath: directory) }
        func state() throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: statePath))) }
        func writeState(_ bytes: [UInt8]) throws { try Data(bytes).write(to: URL(fileURLWithPath: statePath)) }

        /// Rewrites the payload's JSON with `change` and frames it again (checksum included).
        func editPayload(_ change: (inout [String: Any]) -> Void) throws {
            let bytes = try state()
            var object = try JSONSerialization.jsonObject(with: Data(bytes[SnapshotFile.headerSize...])) as? [String: Any] ?? [:]
            change(&object)
            try writeState(SnapshotFile.frame(Array(try JSONSerialization.data(withJSONObject: object))))
        }
    }

    /// This process's descriptors for the snapshot's files. Not KVM's: other
    /// suites build machines in parallel, so their count is not this test's to
    /// check (the serial XCTest `ResourceHygiene` checks them exactly).
    static func descriptors(of saved: Saved) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap { name in
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + name)) ?? ""
            return target.hasPrefix(saved.directory) ? target : nil
        }.sorted()
    }

    func expectRestoreFails(_ saved: Saved, _ check: (MachineError) -> Bool, _ comment: Comment) throws {
        let descriptors = try Self.descriptors(of: saved)
        do {
            _ = try Machine.restore(from: saved.directory, io: MachineIO(serialOutput: SerialBufferOutput()))
            Issue.record("restored a bad snapshot: \(comment)")
        } catch {
            #expect(check(error), "\(comment): \(error)")
            #expect(!error.description.isEmpty)
        }
        #expect(try Self.descriptors(of: saved) == descriptors, "\(comment): no fd leaked")
    }

    @Test func aTruncatedStateFileIsRefused() throws {
        let saved = try Saved()
        defer { saved.remove() }
        let bytes = try saved.state()
        try saved.writeState(Array(bytes.prefix(bytes.count / 2)))
        try expectRestoreFails(saved, { if case .snapshot(.truncated) = $0 { true } else { false } }, "half a state file")
        try saved.writeState(Array(bytes.prefix(10)))
        try expectRestoreFails(saved, { if case .snapshot(.truncated) = $0 { true } else { false } }, "shorter than a header")
    }

    @Test func aCorruptedStateFileFailsItsChecksum() throws {
        let saved = try Saved()
        defer { saved.remove() }
        var bytes = try saved.state()
        bytes[bytes.count / 2] ^= 0x20
        try saved.writeState(bytes)
        try expectRestoreFails(saved, { if case .snapshot(.checksumMismatch) = $0 { true } else { false } }, "one flipped bit")
    }

    @Test func aWrongMagicOrVersionIsRefused() throws {
        let saved = try Saved()
        defer { saved.remove() }
        var bytes = try saved.state()
        bytes[0] = UInt8(ascii: "X")
        try saved.writeState(bytes)
        try expectRestoreFails(saved, { if case .snapshot(.badMagic) = $0 { true } else { false } }, "bad magic")
        bytes[0] = UInt8(ascii: "S")
        bytes[8] = 2
        try saved.writeState(bytes)
        try expectRestoreFails(
            saved, { if case .snapshot(.unsupportedVersion(_, found: 2, supported: 1)) = $0 { true } else { false } }, "version 2")
    }

    @Test func aMemoryFileShorterThanTheRAMIsRefused() throws {
        let saved = try Saved()
        defer { saved.remove() }
        #expect(truncate(saved.memoryPath, 8 << 20) == 0)
        try expectRestoreFails(saved, { if case .snapshot(.inconsistent) = $0 { true } else { false } }, "8 MiB of 16")
        #expect(unlink(saved.memoryPath) == 0)
        try expectRestoreFails(saved, { if case .snapshot(.io) = $0 { true } else { false } }, "no memory file")
    }

    @Test func malformedOrInconsistentStateIsRefusedNamingWhatIsWrong() throws {
        let saved = try Saved()
        defer { saved.remove() }
        try saved.editPayload { $0["vcpus"] = "many" }
        try expectRestoreFails(
            saved,
            {
                if case .snapshot(.malformed(_, let reason)) = $0 { reason.contains("vcpus") } else { false }
            }, "vcpus of the wrong type")
        let other = try Saved()
        defer { other.remove() }
        try other.editPayload { object in
            var hardware = object["hardware"] as? [String: Any] ?? [:]
            hardware["vcpuCount"] = 3
            object["hardware"] = hardware
        }
        try expectRestoreFails(other, { if case .snapshot(.inconsistent) = $0 { true } else { false } }, "3 vCPUs, 1 state")
    }

    @Test func moreVCPUsThanTheHostAllowsIsAClearError() throws {
        let saved = try Saved()
        defer { saved.remove() }
        try saved.editPayload { object in
            var hardware = object["hardware"] as? [String: Any] ?? [:]
            // One more than any machine may have (xAPIC ids are 8 bits).
            hardware["vcpuCount"] = 256
            object["hardware"] = hardware
            let vcpus = object["vcpus"] as? [Any] ?? []
            object["vcpus"] = Array(repeating: vcpus.first ?? [:], count: 256)
        }
        try expectRestoreFails(saved, { if case .invalidVCPUCount(256, _) = $0 { true } else { false } }, "256 vCPUs")
    }
}

/// Runs a machine on a vCPU thread of its own while the test thread pauses,
/// inspects and resumes it.
final class Runner {
    /// What the thread leaves behind: written by it before `join()` returns, read after.
    private final class Outcome: @unchecked Sendable {
        var result: Result<StopReason, MachineError> = .success(.interrupted)
    }

    private let outcome = Outcome()
    private var thread: JoinHandle?

    init(_ machine: Machine) {
        // The test thread only pauses, inspects and resumes it, which `Machine` allows from any thread.
        nonisolated(unsafe) let machine = machine
        let outcome = outcome
        thread = try? HostThread.spawn(name: "test vcpu") {
            outcome.result = Result { () throws(MachineError) -> StopReason in try machine.run(timeout: .seconds(60)) }
        }
    }

    func finish() throws -> StopReason {
        thread?.join()
        return try outcome.result.get()
    }
}
