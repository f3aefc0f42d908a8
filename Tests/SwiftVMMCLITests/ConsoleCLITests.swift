import Firmware
import Foundation
import Testing

/// The serial console of `swiftvmm run`: piped input, and a person at a terminal.
@Suite(.serialized) struct ConsoleCLITests {
    @Test func pipedInputReachesTheGuestsSerialPort() throws {
        let guest = try TemporaryFile(FirmwareImage.realEcho.bytes)
        let result = try runSwiftVMM(["run", guest.path], input: Data("hello\nrest".utf8))
        #expect(result.stdout == "HELLO\n")
        #expect(result.status == 0, "\(result.stderr)")
    }

    /// A real terminal, through tmux: keystrokes reach the guest, Ctrl-A x
    /// quits with status 0, and the terminal is back in canonical mode after.
    @Test func anInteractiveTerminalTypesIntoTheGuestAndCtrlAXQuits() throws {
        let tmux = try #require(
            ["/usr/bin/tmux", "/bin/tmux"].first { FileManager.default.isExecutableFile(atPath: $0) },
            "tmux is needed for the interactive console test (.ci/run installs it)")
        let guest = try TemporaryFile(FirmwareImage.realEcho.bytes)
        let session = "swiftvmm-\(getpid())"
        func tmuxRun(_ arguments: [String]) throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tmux)
            process.arguments = arguments
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }
        func screen() throws -> String { try tmuxRun(["capture-pane", "-t", session, "-p"]) }
        func waitFor(_ text: String, seconds: Double = 20) throws -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if try screen().contains(text) { return true }
                usleep(100_000)
            }
            return false
        }
        _ = try tmuxRun(["new-session", "-d", "-s", session, "-x", "120", "-y", "20", "/bin/sh"])
        defer { _ = try? tmuxRun(["kill-session", "-t", session]) }
        let command = "\(try swiftvmmBinary().path) run \(guest.path); echo STATUS=$?; stty -a | grep -o -- '-*icanon' | sed 's/^/MODE=/'"
        _ = try tmuxRun(["send-keys", "-t", session, command, "Enter"])
        usleep(500_000)
        _ = try tmuxRun(["send-keys", "-t", session, "-l", "typed"])
        #expect(try waitFor("TYPED"), "the guest echoed the keystrokes: \((try? screen()) ?? "")")
        _ = try tmuxRun(["send-keys", "-t", session, "C-a", "x"])
        #expect(try waitFor("STATUS=0"), "Ctrl-A x ended swiftvmm with status 0: \((try? screen()) ?? "")")
        #expect(try waitFor("MODE=icanon"), "the terminal was restored: \((try? screen()) ?? "")")
        #expect(try screen().contains("stopped on request"))
    }
}
