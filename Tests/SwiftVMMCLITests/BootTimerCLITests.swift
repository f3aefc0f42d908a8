import Firmware
import Foundation
import Testing

/// `swiftvmm run --boot-timer`: a guest's write of 123 at 0xd0000000 prints
/// Firecracker's boot-time line on stderr; without the flag nothing does.
@Suite struct BootTimerCLITests {
    /// "Guest-boot-time = " microseconds (right-aligned in six columns) " us " milliseconds " ms, " the same for CPU time.
    static var line: Regex<(Substring, Substring, Substring, Substring, Substring)> {
        #/Guest-boot-time = +(\d+) us (\d+) ms, +(\d+) CPU us (\d+) CPU ms/#
    }

    @Test func theGuestsSignalPrintsTheBootTime() throws {
        let guest = try TemporaryFile(FirmwareImage.protectedBootTimer.bytes)
        let result = try runSwiftVMM(["run", "--mode", "protected", "--boot-timer", guest.path])
        #expect(result.status == 0 && result.stdout == "boot timer\n", "\(result)")
        let match = try #require(result.stderr.firstMatch(of: Self.line), "\(result.stderr)")
        let (wallUs, wallMs, cpuUs, cpuMs) = (Int(match.1)!, Int(match.2)!, Int(match.3)!, Int(match.4)!)
        #expect(wallMs == wallUs / 1000 && cpuMs == cpuUs / 1000)
        // From building the machine to the guest's store: more than nothing, far less than a minute.
        #expect(wallUs > 0 && wallUs < 60_000_000)
        #expect(result.stderr.matches(of: Self.line).count == 1)
    }

    @Test func withoutTheFlagThereIsNoBootTimer() throws {
        let guest = try TemporaryFile(FirmwareImage.protectedBootTimer.bytes)
        let result = try runSwiftVMM(["run", "--mode", "protected", guest.path])
        #expect(result.stdout == "boot timer\n", "\(result)")
        #expect(!result.stderr.contains("Guest-boot-time"), "\(result.stderr)")
    }
}
