import Devices
import Foundation
import SwiftVMM
import Testing
import VMMTesting
import X86Boot

/// Debian's own kernel (its PVH `vmlinux`, PVHBootTests.vmlinux) finds
/// swiftvmm's virtio-mmio transports through the ACPI DSDT: one `LNRO0005`
/// platform device per virtio device, in the DSDT's order, which is the
/// order of the windows swiftvmm also appends as `virtio_mmio.device=` (that
/// Debian's kernel ignores: it has no `CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES`).
/// Linux says nothing when it creates such a device unless asked:
/// `dyndbg="file drivers/acpi/acpi_platform.c +p"` turns on the
/// `dev_dbg` in acpi_create_platform_device, "acpi LNRO0005:00: created
/// platform device LNRO0005:00", and `loglevel=8` lets it through to COM1.
/// `preempt=full`: ftrace's boot-time check of its call sites is a work item
/// that never yields under Debian's default voluntary preemption, and with
/// ring 0 emulated it would hold the only CPU for many minutes before the
/// ACPI scan.
///
/// On a PVM host that emulates kernel code this is minutes of boot, so the
/// suite runs in CI's Linux step only (its name matches that step's filter,
/// `LinuxVirtioDriverTests`, which the main pass skips) and is skipped under
/// the sanitizers, and where Debian's kernel is not in /boot (CI installs it).
@Suite(
    .serialized, .enabled(if: !ProcessResources.underSanitizer, "SKIPPED: Debian's kernel boots for minutes; longer under a sanitizer"),
    .enabled(
        if: ((try? FileManager.default.contentsOfDirectory(atPath: "/boot")) ?? []).contains { $0.hasPrefix("vmlinuz-") },
        "SKIPPED: no /boot/vmlinuz-* (Debian's linux-image-amd64)"))
struct LinuxVirtioDriverTestsDebianACPI {
    @Test func debianKernelFindsEachVirtioTransportAsAnACPILNRO0005Device() throws {
        let directory = NSTemporaryDirectory() + "swiftvmm-debian-acpi-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let image = directory + "/disk.img"
        #expect(FileManager.default.createFile(atPath: image, contents: Data(count: 1 << 20)))

        let output = SerialBufferOutput()
        var configuration = MachineConfiguration(
            guest: .linux(
                kernel: try PVHBootTests.vmlinux.get(),
                commandLine:
                    "console=ttyS0 earlyprintk=ttyS0 nokaslr noxsave clearcpuid=popcnt,cx16,smap,smep,avx,avx2,fsgsbase preempt=full loglevel=8 "
                    + "dyndbg=\"file drivers/acpi/acpi_platform.c +p\""),
            memorySize: 256 << 20, serialOutput: output, hiddenCPUFeatures: [try #require(CPUIDFeature.named("cx16"))])
        configuration.virtioDevices = [
            .block(.init(path: image)), .entropy, .vsock(.init(cid: 913, socketPath: directory + "/v.sock")),
        ]
        let machine = try Machine(configuration)
        let count = configuration.virtioDevices.count
        let last = "created platform device LNRO0005:\(String(format: "%02x", count - 1))"
        let reason = try machine.withDeadline(.seconds(900)) { () throws(MachineError) -> StopReason? in
            while true {
                let exit = try machine.nextExit()
                if let reason = try machine.dispatch(exit) { return reason }
                // A line ended on COM1: look for the last device's line.
                if case .ioOut(0x3f8, 1, 1, let data) = exit, data.value == 0x0a, output.text.contains(last) { return nil }
            }
        }
        let text = output.text
        #expect(reason == nil, "stopped before the last device: \(String(describing: reason))\n\(text.suffix(3000))")

        // The windows, in DSDT order, as the kernel's own command line shows them.
        let commandLine = try #require(text.split(whereSeparator: \.isNewline).first { $0.contains("Command line: ") })
        let windows = commandLine.split(separator: " ").filter { $0.hasPrefix("virtio_mmio.device=") }.map {
            String($0.dropFirst("virtio_mmio.device=".count))
        }
        #expect(windows == ["4K@0xd0000000:5", "4K@0xd0001000:6", "4K@0xd0002000:7"], "\(commandLine)")
        for (index, window) in windows.enumerated() {
            let name = "LNRO0005:\(String(format: "%02x", index))"
            #expect(
                text.contains("acpi \(name): created platform device \(name)"),
                "no platform device for the DSDT's virtio-mmio window \(window) (\(name)):\n\(text.suffix(3000))")
        }
        #expect(!text.contains("LNRO0005:\(String(format: "%02x", count))"), "one device per transport, no more")
    }
}
