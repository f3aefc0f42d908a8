import Foundation
import HostSupport
import VMMTesting

/// The Linux test kernel (scripts/make-test-kernel.sh) booted once to its
/// shell with one of each virtio device, saved to a snapshot directory, and
/// restored for every test with backends of the test's own: fresh copies of
/// the disk images, a tap, a vsock socket and a console file.
///
/// The boot costs about 3 minutes here (the kernel's ring-0 code is
/// emulated); a restore costs milliseconds. A restored machine reopens its
/// backends from the snapshot's `MachineHardware.virtioDevices`, so each
/// test gets its own by rewriting that list in a copy of the state file
/// (the guest cannot tell: the devices, their MMIO windows, interrupts,
/// features and queues are the same; only the files and tap behind them differ).
final class LinuxGuestFixture: Sendable {
    /// The devices in the order the guest found them (their MMIO windows and
    /// interrupt lines follow this order, so every restore keeps it).
    enum Slot: Int, CaseIterable {
        case disk  // vda, writable ext4
        case readOnlyDisk  // vdb, the same image, read-only
        case network  // eth0
        case vsock
        case entropy  // /dev/hwrng
        case balloon
        case console  // hvc0
    }

    /// The guest's CID and MAC address.
    static let guestCID: UInt32 = 3
    static let guestMAC: [UInt8] = [0x52, 0x54, 0x00, 0x5f, 0x10, 0x02]
    /// What the host put on the disk image before the boot.
    static let hostFileText = "written on the host by mkfs.ext4 -d"
    /// `TestKernel.commandLine` with `clearcpuid=smap,popcnt` (without it
    /// the boot was seen to make no progress after "PTP clock support
    /// registered" for 18 minutes on this loaded host; with it the kernel
    /// reaches its shell in 3 to 6 minutes).
    static let commandLine = TestKernel.commandLine + " clearcpuid=smap,popcnt"
    /// The guest's processors: two, so that SMP bring-up (with KVM's
    /// hypercall features hidden by `HypercallProbe` on this host), an NMI
    /// to the other processor (`lsl` in the NMI entry) and S3's offlining
    /// and restarting of CPU 1 are exercised. `theShellAnswersAtTheSerialConsole`
    /// checks /proc/cpuinfo against this count.
    static let vcpus = 2
    /// The guest's RAM.
    static let memory: UInt64 = 128 << 20

    /// Everything of this fixture lives under here; removed when the process exits.
    let directory: String
    /// The snapshot taken at the shell's first prompt.
    let snapshotDirectory: String
    /// The ext4 image each test's disks start as (what the boot saw too).
    let diskTemplate: String
    /// What the kernel printed while it booted.
    let bootLog: String
    /// How long the boot to the prompt took.
    let bootDuration: Duration
    private let counter = ThreadLock(0)

    /// The fixture, booted on first use by whichever test comes first.
    static let shared = Result { try LinuxGuestFixture() }

    /// The static vsock tool for the guest (scripts/test-kernel-tools/vsock-echo.c).
    static let vsockToolSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/test-kernel-tools/vsock-echo.c").path

    /// Why these tests cannot run here, or `nil`.
    static var unavailableReason: String? {
        if !TestKernel.isAvailable { return TestKernel.unavailableReason }
        if ProcessResources.underSanitizer {
            return "SKIPPED: booting the test kernel takes minutes of emulated ring-0 code; the plain pass runs LinuxVirtioDriverTests"
        }
        for tool in ["/usr/sbin/mkfs.ext4", "/usr/sbin/debugfs", "/usr/sbin/ip", "/usr/bin/gcc", "/bin/busybox"]
        where !FileManager.default.isExecutableFile(atPath: tool) {
            return "SKIPPED: \(tool) is missing (apt-get install e2fsprogs iproute2 gcc libc6-dev)"
        }
        if !FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/libc.a") {
            return "SKIPPED: libc.a is missing for the static guest tool (apt-get install libc6-dev)"
        }
        if getuid() != 0 { return "SKIPPED: needs root for the tap and the network namespace" }
        return nil
    }

    /// Where the fixture lives when `SWIFTVMM_LINUX_FIXTURE_DIR` names a
    /// directory: kept after the run, and a snapshot already there (with its
    /// disk template and boot log) is used instead of booting again. For
    /// working on these tests; CI leaves it unset and boots once per run.
    static let keptDirectoryVariable = "SWIFTVMM_LINUX_FIXTURE_DIR"

    private init() throws {
        let kept = ProcessInfo.processInfo.environment[Self.keptDirectoryVariable].flatMap { $0.isEmpty ? nil : $0 }
        let base = kept ?? FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-linux-\(getpid())").path
        directory = base
        snapshotDirectory = base + "/snapshot"
        diskTemplate = base + "/disk-template.img"
        let bootLogFile = base + "/boot.log"
        if kept != nil, FileManager.default.fileExists(atPath: snapshotDirectory + "/state"),
            let log = try? String(contentsOfFile: bootLogFile, encoding: .utf8)
        {
            bootLog = log
            bootDuration = .zero
            try? FileManager.default.removeItem(atPath: base + "/machines")
            return
        }
        if kept == nil {
            try? FileManager.default.removeItem(atPath: base)
            fixtureDirectoryToRemove = strdup(base)
            atexit {
                if let path = fixtureDirectoryToRemove { try? FileManager.default.removeItem(atPath: String(cString: path)) }
            }
        }
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)

        // The guest's extra files: the vsock tool, built static, in a second
        // cpio archive after the kernel's (Linux unpacks concatenated archives).
        let tool = base + "/vsock-echo"
        try HostCommand.run("/usr/bin/gcc", ["-static", "-Os", "-o", tool, Self.vsockToolSource])
        var initrd = try TestKernel.file("initramfs.cpio")
        initrd += NewcArchive.make([("bin/vsock-echo", 0o100755, try GuestFile.read(tool))])

        // A 16 MiB ext4 image holding one file the guest reads.
        let seed = base + "/seed"
        try FileManager.default.createDirectory(atPath: seed, withIntermediateDirectories: true)
        try Self.hostFileText.write(toFile: seed + "/hello.txt", atomically: true, encoding: .utf8)
        try? FileManager.default.removeItem(atPath: diskTemplate)
        try HostCommand.run("/usr/sbin/mkfs.ext4", ["-q", "-F", "-L", "swiftvmm", "-d", seed, diskTemplate, "16M"])

        try? FileManager.default.removeItem(atPath: base + "/boot")
        let backends = try Backends(directory: base + "/boot", template: diskTemplate, tap: Self.tapName(0))
        var configuration = MachineConfiguration(
            guest: .linux(kernel: try TestKernel.file("vmlinux"), initrd: initrd, commandLine: Self.commandLine),
            memorySize: Self.memory, serialOutput: SerialBufferOutput(), platform: .pc, vcpuCount: Self.vcpus)
        configuration.virtioDevices = backends.devices
        let vm = try TestVM(configuration: configuration)
        let start = ContinuousClock.now
        try vm.run(untilOutputContains: TestKernel.readyMarker, timeout: .seconds(1800))
        try vm.run(untilOutputContains: TestKernel.prompt, timeout: .seconds(120))
        bootDuration = ContinuousClock.now - start
        print("LinuxGuestFixture: the test kernel reached its prompt with \(Self.vcpus) vCPUs in \(bootDuration)")
        bootLog = vm.serialText
        // From here on the console takes only emergencies: a kernel message
        // (such as the clocksource watchdog's, minutes later in a restored
        // copy) would otherwise land in the middle of a test's shell output.
        let quiet = vm.serialBytes.count
        _ = vm.typeSerial("dmesg -n 1\n")
        let deadline = ContinuousClock.now + .seconds(60)
        while !String(decoding: vm.serialBytes.dropFirst(quiet), as: UTF8.self).contains(TestKernel.prompt) {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { throw TestKernelGuestTimeout(description: "no prompt after dmesg -n 1") }
            try vm.runBootstrapProcessor(upTo: min(left, TestKernelGuest.slice))
        }
        try vm.handlePendingExit()
        // The other processors run on threads of their own: parked while the machine is saved.
        vm.machine.pause()
        defer { vm.machine.resume() }
        try vm.machine.snapshot(to: snapshotDirectory)
        try bootLog.write(toFile: bootLogFile, atomically: true, encoding: .utf8)
    }

    /// A tap name of at most 15 bytes, unique to this process and `index`.
    static func tapName(_ index: Int) -> String { "svlv\(getpid() % 1_000_000)t\(index)" }

    /// The files and tap one machine's devices use.
    struct Backends {
        let directory: String
        let disk: String
        let readOnlyDisk: String
        let tap: String
        let vsockSocket: String
        let consoleFile: String

        /// Makes `directory` with fresh copies of `template` for both disks
        /// (or `disk` for the writable one, to read back what an earlier machine wrote).
        init(directory: String, template: String, disk: String? = nil, tap: String) throws {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            self.directory = directory
            self.disk = directory + "/vda.img"
            readOnlyDisk = directory + "/vdb.img"
            self.tap = tap
            vsockSocket = directory + "/vsock"
            consoleFile = directory + "/hvc0.log"
            try FileManager.default.copyItem(atPath: disk ?? template, toPath: self.disk)
            try FileManager.default.copyItem(atPath: template, toPath: readOnlyDisk)
            _ = FileManager.default.createFile(atPath: consoleFile, contents: nil)
        }

        /// In `Slot` order.
        var devices: [VirtioDeviceConfiguration] {
            [
                .block(.init(path: disk, identifier: "swiftvmm-vda")),
                .block(.init(path: readOnlyDisk, readOnly: true, identifier: "swiftvmm-vdb")),
                .network(.init(tap: tap, mac: LinuxGuestFixture.guestMAC)),
                .vsock(.init(cid: LinuxGuestFixture.guestCID, socketPath: vsockSocket)),
                .entropy,
                .balloon,
                .console(.file(consoleFile)),
            ]
        }
    }

    /// A machine continuing from the prompt, with backends of its own (its
    /// writable disk starts as `disk` when given, else as the template).
    func restore(disk: String? = nil) throws -> TestKernelGuest {
        let index = counter.withLock {
            $0 += 1
            return $0
        }
        let backends = try Backends(
            directory: directory + "/machines/\(index)", template: diskTemplate, disk: disk, tap: Self.tapName(index))
        var state = try Machine.readSnapshotState(from: snapshotDirectory)
        state.hardware.virtioDevices = backends.devices
        try Data(try state.stateFile()).write(to: URL(fileURLWithPath: backends.directory + "/state"))
        try FileManager.default.createSymbolicLink(
            atPath: backends.directory + "/memory", withDestinationPath: snapshotDirectory + "/memory")
        let machine = try Machine.restore(from: backends.directory, io: MachineIO(serialOutput: SerialBufferOutput()))
        return TestKernelGuest(vm: try TestVM(machine: machine), backends: backends)
    }
}

/// The fixture's directory, for the exit handler (a C function pointer captures nothing).
nonisolated(unsafe) private var fixtureDirectoryToRemove: UnsafeMutablePointer<CChar>?
