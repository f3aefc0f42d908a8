import Foundation
import SwiftVMM

/// The minimal Linux 6.1 test kernel that `scripts/make-test-kernel.sh`
/// builds once per machine and caches outside the repository: a PVH
/// `vmlinux`, the same kernel as a `bzImage`, and a busybox `initramfs.cpio`
/// whose `/init` mounts proc, sys and dev, prints `readyMarker` and gives a
/// shell (prompt `prompt`) on ttyS0. Every virtio driver is built in (blk,
/// console, rng, net, vsock, balloon, ext4), over virtio-mmio with ACPI or
/// `virtio_mmio.device=` devices, and the kernel works around this host's
/// user-mode `syscall` defect (see the README).
///
/// The directory comes from `SWIFTVMM_TEST_KERNEL` (set it to the output
/// of `scripts/make-test-kernel.sh`) or, when that is unset, from
/// `scripts/make-test-kernel.sh --print-path`. A test that needs the kernel
/// is enabled on `isAvailable` and, when it is not built, reported as
/// skipped with `unavailableReason`.
public enum TestKernel {
    /// The environment variable naming the kernel's directory.
    public static let environmentVariable = "SWIFTVMM_TEST_KERNEL"
    /// The line `/init` prints just before it starts the shell.
    public static let readyMarker = "SWIFTVMM-TEST-KERNEL-READY"
    /// The shell's prompt (`PS1`).
    public static let prompt = "test-kernel# "
    /// The command line the kernel is booted with: console on COM1, and a
    /// panic resets the machine rather than spinning forever. No `noxsave`:
    /// this host cannot run the XSAVE family in guest ring 0, but
    /// `InstructionAssist` carries it out (and `clac`/`stac`, `popcnt`,
    /// `xgetbv`), so the kernel runs as it would on hardware.
    /// ACPI is on: the kernel finds its processors in the MADT, COM1's IRQ and
    /// the virtio devices in the DSDT, and `poweroff -f` ends the machine
    /// through `\_S5` (status 0), `echo mem > /sys/power/state` through `\_S3`.
    public static let commandLine = "console=ttyS0 panic=-1"

    /// The directory holding `vmlinux`, `bzImage`, `initramfs.cpio`,
    /// `config` and `kernel.release`, or why there is none.
    public static let directory: Result<String, TestKernelUnavailable> = locate()

    /// Whether the kernel is built.
    public static var isAvailable: Bool { (try? directory.get()) != nil }

    /// Why tests that need the kernel are skipped, when it is not built.
    public static var unavailableReason: String {
        switch directory {
        case .success: return ""
        case .failure(let reason): return "SKIPPED: \(reason.description)"
        }
    }

    /// The bytes of one of the kernel's files (`"vmlinux"`, `"initramfs.cpio"`, ...).
    public static func file(_ name: String) throws -> [UInt8] {
        try GuestFile.read(try directory.get() + "/" + name)
    }

    /// `uname -r` of the kernel.
    public static func release() throws -> String {
        String(decoding: try file("kernel.release"), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The kernel booted as the PVH `vmlinux` with the initramfs, ready for `TestVM`.
    public static func guest(commandLine: String = TestKernel.commandLine) throws -> MachineConfiguration.Guest {
        .linux(kernel: try file("vmlinux"), initrd: try file("initramfs.cpio"), commandLine: commandLine)
    }

    static func locate() -> Result<String, TestKernelUnavailable> {
        if let path = ProcessInfo.processInfo.environment[environmentVariable], !path.isEmpty {
            guard FileManager.default.fileExists(atPath: path + "/complete") else {
                return .failure(
                    TestKernelUnavailable(
                        description: "\(environmentVariable)=\(path) holds no finished build of scripts/make-test-kernel.sh"))
            }
            return .success(path)
        }
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = repository.appendingPathComponent("scripts/make-test-kernel.sh").path
        let notBuilt = TestKernelUnavailable(
            description:
                "the Linux test kernel is not built: run scripts/make-test-kernel.sh (about 8 minutes on 2 idle cores) or set \(environmentVariable)"
        )
        let process = Process()
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script, "--print-path"]
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return .failure(notBuilt) }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let path = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0, !path.isEmpty else { return .failure(notBuilt) }
        return .success(path)
    }
}

/// Why the test kernel cannot be used.
public struct TestKernelUnavailable: Error, CustomStringConvertible, Sendable {
    public let description: String
}
