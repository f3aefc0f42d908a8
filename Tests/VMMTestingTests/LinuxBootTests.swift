import Devices
import Foundation
import SwiftVMM
import Testing
import VMCore
import VMMTesting
import X86Boot

/// Debian's stock kernel, installed by `.ci/run` (package linux-image-amd64).
/// Missing, it is a failure with the reason, not a skip.
func debianKernelPath() throws -> String {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/boot")) ?? []
    guard let name = names.filter({ $0.hasPrefix("vmlinuz-") }).sorted().last else {
        Issue.record("no /boot/vmlinuz-*: install Debian's linux-image-amd64 (.ci/run does)")
        throw CancellationError()
    }
    return "/boot/" + name
}

@Suite(.serialized) struct LinuxBootTests {
    /// The decompressor of Debian's bzImage runs with our zero page and, asked
    /// by `earlyprintk=serial,ttyS0,115200`, programs COM1 for 115200 baud 8N1
    /// before it starts decompressing: what a host that emulates kernel code
    /// can show within a bounded time.
    @Test func debianBzImageReachesItsDecompressorAndProgramsCOM1() throws {
        let kernel = try GuestFile.read(try debianKernelPath())
        let vm = try TestVM(.linux(kernel: kernel, commandLine: "console=ttyS0 earlyprintk=serial,ttyS0,115200"), memory: 256 << 20)
        // early_serial_init: LCR = 8N1, IER, FCR, MCR, then LCR | DLAB, the
        // divisor bytes, and LCR = 8N1 again to close the latch.
        let openLatch = try vm.run(
            until: ExitPredicate("LCR write opening the divisor latch") { exit in
                if case .ioOut(0x3fb, 1, 1, let data) = exit { return data.value & 0x80 != 0 }
                return false
            }, timeout: .seconds(120))
        #expect(openLatch == .ioOut(port: 0x3fb, size: 1, count: 1, data: IOData(value: 0x83, size: 1)))
        let exit = try vm.run(
            until: ExitPredicate("LCR write of 8N1 with DLAB clear") { exit in
                if case .ioOut(0x3fb, 1, 1, let data) = exit { return data.value == 0x03 }
                return false
            }, timeout: .seconds(60))
        #expect(exit == .ioOut(port: 0x3fb, size: 1, count: 1, data: IOData(value: 0x03, size: 1)))
        try vm.handlePendingExit()  // let COM1 see that write
        #expect(vm.machine.serial.divisor == 1, "115200 baud is divisor 1 of the 1.8432 MHz clock")
        #expect(vm.machine.serial.lineControl == 0x03)
        let rip = try vm.registers().rip
        #expect(rip >= 0x100000, "running the kernel's own code, not ours")
    }
}

/// The PVH path on Debian's own kernel: `vmlinux` extracted from the bzImage
/// by scripts/extract-vmlinux.sh, entered at its XEN_ELFNOTE_PHYS32_ENTRY.
@Suite(.serialized) struct PVHBootTests {
    /// Extracts vmlinux once per test process.
    static let vmlinux: Result<[UInt8], any Error> = Result {
        let kernel = try debianKernelPath()
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-vmlinux-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/extract-vmlinux.sh").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script, kernel, output]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw GuestFile.ReadError.cannotOpen(errno: ENOENT) }
        return try GuestFile.read(output)
    }

    /// The kernel prints its banner, the e820 map it was given (which must be
    /// exactly the one swiftvmm built) and the ACPI tables it found. On a host
    /// that emulates kernel code this takes tens of seconds.
    @Test func debianVmlinuxBootsThroughPVHAndReportsOurMemoryMapAndACPITables() throws {
        let vm = try TestVM(
            .linux(kernel: try Self.vmlinux.get(), commandLine: "console=ttyS0 earlyprintk=ttyS0 nokaslr"), memory: 256 << 20)
        try vm.run(untilOutputContains: "ACPI: Reserving APIC table memory", timeout: .seconds(600))
        let output = vm.serialText
        #expect(output.contains("Linux version 6."))
        #expect(output.contains("Command line: console=ttyS0 earlyprintk=ttyS0 nokaslr"))

        // "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable"
        let printed = output.split(whereSeparator: \.isNewline).compactMap { line -> String? in
            guard let range = line.range(of: "BIOS-e820: ") else { return nil }
            return String(line[range.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        let tables = try #require(vm.machine.acpiTables)
        let map = try E820Map(
            guestRAM: vm.machine.memory.ranges, reserved: [E820Entry(address: tables.base.rawValue, size: tables.size, type: .acpi)])
        let names: [UInt32: String] = [1: "usable", 2: "reserved", 3: "ACPI data"]
        let expected = map.entries.map { entry in
            String(format: "[mem 0x%016llx-0x%016llx] %@", entry.address, entry.address + entry.size - 1, names[entry.type.rawValue] ?? "?")
        }
        #expect(
            printed == expected, "the kernel's e820 map:\n\(printed.joined(separator: "\n"))\nours:\n\(expected.joined(separator: "\n"))")

        for (signature, table) in [("RSDP", "RSD PTR "), ("XSDT", "XSDT"), ("FACP", "FACP"), ("DSDT", "DSDT"), ("APIC", "APIC")] {
            let address = String(format: "0x%016llX", try #require(tables[signature: table]).address.rawValue)
            #expect(output.contains("ACPI: \(signature) \(address)"), "ACPI: \(signature) at \(address) missing")
        }
        #expect(output.contains("(v02 SWVMM )"))
    }

    /// Debian's kernel saved mid-boot, just after its banner, and restored
    /// into a new machine carries on printing where it stopped: the memory
    /// map and ACPI tables follow, and nothing is printed twice.
    @Test func debianVmlinuxSavedAfterItsBannerCarriesOnInANewMachine() throws {
        let vm = try TestVM(
            .linux(kernel: try Self.vmlinux.get(), commandLine: "console=ttyS0 earlyprintk=ttyS0 nokaslr"), memory: 256 << 20)
        try vm.run(untilOutputContains: "Command line: ", timeout: .seconds(600))
        try vm.handlePendingExit()
        let directory = NSTemporaryDirectory() + "swiftvmm-pvh-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let statistics = try vm.machine.snapshot(to: directory)
        #expect(statistics.memoryFileAllocatedBytes < 128 << 20, "sparse: \(statistics)")
        let before = vm.serialText
        let after = SerialBufferOutput()
        let restored = try Machine.restore(from: directory, io: MachineIO(serialOutput: after))
        let reason = try restored.withDeadline(.seconds(600)) { () throws -> StopReason? in
            while !after.text.contains("ACPI: Reserving APIC table memory") {
                if let reason = try restored.dispatch(try restored.nextExit()) { return reason }
            }
            return nil
        }
        #expect(reason == nil, "the restored kernel stopped: \(String(describing: reason))\n\(after.text)")
        let whole = before + after.text
        #expect(whole.components(separatedBy: "Linux version 6.").count == 2, "the banner once: \(whole)")
        #expect(!after.text.contains("Linux version"), "the restored kernel did not start again")
        #expect(after.text.contains("BIOS-e820: "), "\(after.text)")
        #expect(whole.contains("ACPI: RSDP 0x"), "\(whole)")
    }

    /// With `--cpus 2` the kernel finds both processors in our MADT (one
    /// local APIC each, the I/O APIC) and sizes its SMP setup for them. The
    /// application processor is only started later (about a minute of guest
    /// time on this host), which the next test waits for.
    @Test func debianVmlinuxFindsBothCPUsOfATwoVCPUMachine() throws {
        let vm = try TestVM(
            .linux(kernel: try Self.vmlinux.get(), commandLine: "console=ttyS0 earlyprintk=ttyS0 nokaslr"), memory: 256 << 20, vcpus: 2)
        #expect(vm.machine.vcpuCount == 2)
        try vm.run(untilOutputContains: "smpboot: Allowing", timeout: .seconds(600))
        try vm.run(untilOutputContains: "hotplug CPUs", timeout: .seconds(60))
        let output = vm.serialText
        #expect(output.contains("found SMP MP-table at [mem 0x000f0000-0x000f000f]"), "the kernel's scan finds our MP table")
        #expect(output.contains("ACPI: Using ACPI (MADT) for SMP configuration information"), "\(output)")
        #expect(output.contains("IOAPIC[0]: apic_id 0, version 17, address 0xfec00000, GSI 0-23"))
        #expect(output.contains("smpboot: Allowing 2 CPUs, 0 hotplug CPUs"), "\(output)")
    }

    /// The kernel starts the second vCPU with INIT and SIPI and it comes up:
    /// "smp: Brought up 1 node, 2 CPUs", about a minute of guest time in. On a
    /// PVM host it needs the instruction workarounds the README lists (this
    /// far, cx16 and xsave).
    @Test func debianVmlinuxBringsUpTheSecondCPU() throws {
        let output = SerialBufferOutput()
        let machine = try Machine(
            MachineConfiguration(
                guest: .linux(
                    kernel: try Self.vmlinux.get(),
                    commandLine: "console=ttyS0 earlyprintk=ttyS0 nokaslr noxsave clearcpuid=popcnt,cx16,smap,smep,avx,avx2,fsgsbase"),
                memorySize: 256 << 20, serialOutput: output, hiddenCPUFeatures: [try #require(CPUIDFeature.named("cx16"))], vcpuCount: 2))
        let reason = try machine.withDeadline(.seconds(600)) { () throws(MachineError) -> StopReason? in
            while true {
                let exit = try machine.nextExit()
                if let reason = try machine.dispatch(exit) { return reason }
                // A line ended on COM1: look for the message.
                if case .ioOut(0x3f8, 1, 1, let data) = exit, data.value == 0x0a, output.text.contains("processors activated") {
                    return nil
                }
            }
        }
        #expect(reason == nil, "stopped before the message: \(String(describing: reason))\n\(output.text.suffix(2000))")
        #expect(output.text.contains("smp: Brought up 1 node, 2 CPUs"), "\(output.text.suffix(2000))")
        #expect(output.text.contains("smpboot: Total of 2 processors activated"))
    }
}
