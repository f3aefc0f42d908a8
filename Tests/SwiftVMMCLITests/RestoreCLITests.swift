import Devices
import Firmware
import Foundation
import SwiftVMM
import Testing

/// `swiftvmm restore`: a machine saved in one process continues in another,
/// and the console's Ctrl-A p and Ctrl-A s pause and save a running one.
@Suite(.serialized) struct RestoreCLITests {
    /// A directory removed when the test's scope ends.
    final class TemporaryDirectory {
        let path: String
        init() throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-restore-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    /// Runs `guest` in this process for `exits` exits and saves it to a new directory.
    func save(_ guest: FirmwareImage, exits: Int, platform: MachineConfiguration.Platform? = nil) throws -> (
        directory: TemporaryDirectory, output: String
    ) {
        let output = SerialBufferOutput()
        let machine = try Machine(
            MachineConfiguration(guest: .firmware(guest), memorySize: 16 << 20, serialOutput: output, platform: platform))
        try machine.withDeadline(.seconds(30)) { () throws in
            for _ in 0..<exits { #expect(try machine.dispatch(try machine.nextExit()) == nil) }
        }
        let directory = try TemporaryDirectory()
        try machine.snapshot(to: directory.path + "/snapshot")
        return (directory, output.text)
    }

    @Test func aGuestSavedMidRunFinishesInAFreshProcessWithItsOutputAndStatus() throws {
        // The ticker needs the PC platform, which `run` gives only to several
        // vCPUs: the uninterrupted reference runs in this process.
        let output = SerialBufferOutput()
        let reference = try Machine(
            MachineConfiguration(guest: .firmware(.protectedTicker), memorySize: 16 << 20, serialOutput: output, platform: .pc))
        #expect(try reference.run(timeout: .seconds(30)) == .debugExit(status: 0x30))
        #expect(output.text.split(separator: "\n").count == 40)
        for exits in [10, 200] {
            let saved = try save(.protectedTicker, exits: exits, platform: .pc)
            let restored = try runSwiftVMM(["restore", saved.directory.path + "/snapshot"])
            #expect(restored.status == 0x30, "\(restored.stderr)")
            #expect(saved.output + restored.stdout == output.text, "saved after exit \(exits)")
            #expect(restored.stderr.contains("guest wrote 0x30 to the debug-exit port"))
        }
    }

    @Test func stdinReachesARestoredGuest() throws {
        // The echo guest polls COM1's line status, waiting for a byte.
        let saved = try save(.realEcho, exits: 50)
        let restored = try runSwiftVMM(["restore", saved.directory.path + "/snapshot"], input: Data("restored\n".utf8))
        #expect(restored.stdout == "RESTORED\n")
        #expect(restored.status == 0, "\(restored.stderr)")
    }

    @Test func aSnapshotCanBeRestoredManyTimesAndIsNeverModified() throws {
        let saved = try save(.realEcho, exits: 20)
        let state = saved.directory.path + "/snapshot/state"
        let memory = saved.directory.path + "/snapshot/memory"
        let before = [try Data(contentsOf: URL(fileURLWithPath: state)), try Data(contentsOf: URL(fileURLWithPath: memory))]
        for text in ["one\n", "two\n"] {
            let restored = try runSwiftVMM(["restore", saved.directory.path + "/snapshot"], input: Data(text.utf8))
            #expect(restored.stdout == text.uppercased() && restored.status == 0, "\(restored.stderr)")
        }
        #expect([try Data(contentsOf: URL(fileURLWithPath: state)), try Data(contentsOf: URL(fileURLWithPath: memory))] == before)
    }

    @Test(arguments: [
        ("missing", "cannot open"), ("truncated", "truncated"), ("damaged", "checksum mismatch"), ("not a snapshot", "bad magic"),
    ])
    func aBadSnapshotIsOneLineAndStatus64(damage: String, message: String) throws {
        let saved = try save(.realEcho, exits: 5)
        let path = saved.directory.path + "/snapshot"
        let state = URL(fileURLWithPath: path + "/state")
        var bytes = try Data(contentsOf: state)
        switch damage {
        case "missing": try FileManager.default.removeItem(at: state)
        case "truncated": try bytes.prefix(bytes.count - 100).write(to: state)
        case "damaged":
            bytes[bytes.count - 10] ^= 1
            try bytes.write(to: state)
        default: try Data("hello".utf8 + Array(repeating: 0, count: 64)).write(to: state)
        }
        let result = try runSwiftVMM(["restore", path])
        #expect(result.status == 64, "\(damage): \(result.stderr)")
        // One line saying what is wrong (ArgumentParser adds its usage hint after it).
        let firstLine = result.stderr.split(separator: "\n").first.map(String.init) ?? ""
        #expect(firstLine.contains(message) && firstLine.contains(path), "\(damage): \(result.stderr)")
        #expect(!result.stderr.contains("Fatal error"))
    }

    @Test func restoreOptionsAreCheckedLikeRuns() throws {
        let saved = try save(.realEcho, exits: 5)
        let path = saved.directory.path + "/snapshot"
        for (arguments, message) in [
            (["--serial2", "tty"], "--serial2: 'tty' is not file:PATH"), (["--timeout", "soon"], "--timeout"),
            (["--serial2", "file:/nonexistent/dir/com2"], "--serial2: cannot open"),
        ] {
            let result = try runSwiftVMM(["restore"] + arguments + [path])
            #expect(result.status == 64, "\(arguments): \(result.stderr)")
            let firstLine = result.stderr.split(separator: "\n").first.map(String.init) ?? ""
            #expect(firstLine.contains(message), "\(arguments): \(result.stderr)")
        }
    }

    /// At a terminal: Ctrl-A p pauses, Ctrl-A s saves to --snapshot-dir,
    /// Ctrl-A x quits; the saved guest then takes its input in another process.
    @Test func ctrlAPPausesCtrlASSavesAndRestoreContinues() throws {
        let guest = try TemporaryFile(FirmwareImage.realEcho.bytes)
        let directory = try TemporaryDirectory()
        let snapshot = directory.path + "/saved"
        let terminal = try TmuxSession()
        try terminal.type("\(try swiftvmmBinary().path) run --snapshot-dir \(snapshot) \(guest.path); echo STATUS=$?", enter: true)
        usleep(500_000)
        try terminal.type("ab")
        #expect(try terminal.waitFor("AB", seconds: 20), "\(terminal.screenText)")
        try terminal.keys(["C-a", "p"])
        #expect(try terminal.waitFor("paused", seconds: 20), "\(terminal.screenText)")
        try terminal.keys(["C-a", "s"])
        #expect(try terminal.waitFor("snapshot saved to", seconds: 20), "\(terminal.screenText)")
        try terminal.keys(["C-a", "x"])
        #expect(try terminal.waitFor("STATUS=0", seconds: 20), "\(terminal.screenText)")
        let restored = try runSwiftVMM(["restore", snapshot], input: Data("c\n".utf8))
        #expect(restored.stdout == "C\n", "the restored guest carries on after AB: \(restored.stderr)")
        #expect(restored.status == 0)
    }
}
