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
        let guest = try TemporaryFile(FirmwareImage.realEcho.bytes)
        let terminal = try TmuxSession()
        let command = "\(try swiftvmmBinary().path) run \(guest.path); echo STATUS=$?; stty -a | grep -o -- '-*icanon' | sed 's/^/MODE=/'"
        try terminal.type(command, enter: true)
        usleep(500_000)
        try terminal.type("typed")
        #expect(try terminal.waitFor("TYPED", seconds: 20), "the guest echoed the keystrokes: \(terminal.screenText)")
        try terminal.keys(["C-a", "x"])
        #expect(try terminal.waitFor("STATUS=0", seconds: 20), "Ctrl-A x ended swiftvmm with status 0: \(terminal.screenText)")
        #expect(try terminal.waitFor("MODE=icanon", seconds: 20), "the terminal was restored: \(terminal.screenText)")
        #expect(terminal.screenText.contains("stopped on request"))
    }
}
