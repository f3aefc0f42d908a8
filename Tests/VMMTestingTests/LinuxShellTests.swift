import Foundation
import SwiftVMM
import Testing
import VMCore
import VMMTesting

/// The guest from scripts/make-linux-guest.sh (Debian's kernel and a busybox
/// initramfs whose /init prints SWIFTVMM-LINUX-READY), built once per process.
enum LinuxGuest {
    static let directory: Result<String, any Error> = Result {
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

    static func file(_ name: String) throws -> [UInt8] { try GuestFile.read(try directory.get() + "/" + name) }
}

/// Boot to a shell and back out: runs where the host has hardware
/// virtualization, and is reported as skipped, with the reason, elsewhere.
@Suite(
    .serialized,
    .enabled(if: HostCapabilities.hasHardwareVirtualization, Comment(rawValue: HostCapabilities.noHardwareVirtualizationReason)))
struct LinuxShellTests {
    func boot(mode: String) throws -> TestVM {
        let commandLine = "console=ttyS0 reboot=k panic=-1 i8042.noaux swiftvmm.mode=\(mode)"
        return try TestVM(
            .linux(kernel: try LinuxGuest.file("bzImage"), initrd: try LinuxGuest.file("initramfs.cpio.gz"), commandLine: commandLine),
            memory: 256 << 20)
    }

    @Test func bootsToTheShellRunsACommandAndPowersOff() throws {
        let vm = try boot(mode: "shell")
        try vm.run(untilOutputContains: "SWIFTVMM-LINUX-READY", timeout: .seconds(120))
        vm.typeSerial("echo $((6*7))\n")
        try vm.run(untilOutputContains: "\n42", timeout: .seconds(30))
        vm.typeSerial("poweroff -f\n")
        #expect(try vm.runToCompletion(timeout: .seconds(60)) == .powerOff)
    }

    @Test func rebootEndsTheVMAsAReset() throws {
        let vm = try boot(mode: "reboot")
        #expect(try vm.runToCompletion(timeout: .seconds(120)) == .reset)
        #expect(vm.serialText.contains("SWIFTVMM-LINUX-READY"))
    }

    @Test func poweroffEndsTheVM() throws {
        let vm = try boot(mode: "poweroff")
        #expect(try vm.runToCompletion(timeout: .seconds(120)) == .powerOff)
    }

    @Test func aPanicWithPanicMinusOneResets() throws {
        let vm = try boot(mode: "panic")
        #expect(try vm.runToCompletion(timeout: .seconds(120)) == .reset)
        #expect(vm.serialText.contains("Kernel panic"))
    }
}
