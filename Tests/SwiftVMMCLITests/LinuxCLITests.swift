import Foundation
import Testing
import VMMTesting

/// `swiftvmm run --kernel` with Debian's kernel and the busybox initramfs from
/// scripts/make-linux-guest.sh: every way the guest can end ends swiftvmm with
/// status 0. Needs hardware virtualization; reported as skipped elsewhere.
@Suite(
    .serialized,
    .enabled(if: HostCapabilities.hasHardwareVirtualization, Comment(rawValue: HostCapabilities.noHardwareVirtualizationReason)))
struct LinuxCLITests {
    static let guest: Result<String, any Error> = Result {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let output = repository.appendingPathComponent(".build/linux-guest").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [repository.appendingPathComponent("scripts/make-linux-guest.sh").path, output]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.fileReadUnknown) }
        return output
    }

    func run(mode: String) throws -> CommandResult {
        let directory = try Self.guest.get()
        return try runSwiftVMM(
            [
                "run", "--kernel", directory + "/bzImage", "--initrd", directory + "/initramfs.cpio.gz",
                "--cmdline", "console=ttyS0 reboot=k panic=-1 swiftvmm.mode=\(mode)", "--timeout", "120s",
            ], timeout: 180)
    }

    @Test(arguments: [
        ("poweroff", "powered the machine off"), ("reboot", "reset the machine"), ("halt", "halted with interrupts disabled"),
        ("panic", "reset the machine"),
    ])
    func everyWayOutEndsWithStatusZero(mode: String, message: String) throws {
        let result = try run(mode: mode)
        #expect(result.stdout.contains("SWIFTVMM-LINUX-READY"))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    /// A person at a terminal: the shell's prompt, a command typed through
    /// tmux and its answer, then Ctrl-A x.
    @Test func anInteractiveShellThroughTmux() throws {
        let directory = try Self.guest.get()
        let terminal = try TmuxSession()
        let command =
            "\(try swiftvmmBinary().path) run --kernel \(directory)/bzImage --initrd \(directory)/initramfs.cpio.gz"
            + " --cmdline 'console=ttyS0 swiftvmm.mode=shell'; echo STATUS=$?"
        try terminal.type(command, enter: true)
        #expect(try terminal.waitFor("SWIFTVMM-LINUX-READY", seconds: 120), "\(terminal.screenText)")
        try terminal.type("echo $((6*7))", enter: true)
        #expect(try terminal.waitFor("\n42", seconds: 30), "\(terminal.screenText)")
        try terminal.keys(["C-a", "x"])
        #expect(try terminal.waitFor("STATUS=0", seconds: 30), "\(terminal.screenText)")
    }

    /// Issue 13's S3 with Linux: `echo mem > /sys/power/state` takes the
    /// FADT's sleep control register path into S3, swiftvmm stops the vCPUs
    /// with RAM kept, a key at the console wakes the guest at the FACS's
    /// waking vector, and the shell carries on with the rest of its line.
    @Test func echoMemSuspendsLinuxAndAKeyAtTheConsoleWakesIt() throws {
        let directory = try Self.guest.get()
        let vmm = try GuestProcess(swiftvmm: [
            "run", "--log-level", "debug", "--kernel", directory + "/bzImage", "--initrd", directory + "/initramfs.cpio.gz",
            "--cmdline", "console=ttyS0 no_console_suspend swiftvmm.mode=shell", "--timeout", "300s",
        ])
        #expect(vmm.waitForOutput("SWIFTVMM-LINUX-READY", seconds: 120), "\(vmm.stdout)")
        vmm.send("grep -w mem /sys/power/state && echo mem > /sys/power/state; echo RESUMED-$((6*7))\n")
        #expect(vmm.waitForStandardError("guest suspended to RAM", seconds: 120), "\(vmm.stdout)\n\(vmm.stderr)")
        // Asleep: the rest of the line waits for the wake.
        usleep(500_000)
        #expect(!vmm.stdout.contains("RESUMED-42"), "\(vmm.stdout)")
        vmm.send("\n")
        #expect(vmm.waitForOutput("RESUMED-42", seconds: 120), "\(vmm.stdout)\n\(vmm.stderr)")
        #expect(vmm.stderr.contains("guest woken from S3 by console"), "\(vmm.stderr)")
        #expect(vmm.stdout.contains("PM: suspend exit"), "\(vmm.stdout)")
        vmm.send("poweroff -f\n")
        #expect(vmm.finish(seconds: 60) == 0, "\(vmm.stderr)")
    }
}
