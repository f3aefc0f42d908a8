import Foundation
import HostSupport
import SwiftVMM
import Testing
import VMCore
import VMMTesting
import VirtioDevices

/// Linux's own virtio drivers (virtio_mmio, virtio_blk with ext4,
/// virtio_net, vmw_vsock_virtio_transport, virtio_rng, virtio_console,
/// virtio_balloon) on swiftvmm's devices (issue 10). The test kernel boots
/// once to its shell (`LinuxGuestFixture`, about 3 minutes here); every test
/// restores that snapshot with backends of its own and types at the serial
/// console. CI runs this suite as its own step after the plain pass
/// (.ci/run), with the kernel built in the background meanwhile; it is
/// skipped under the sanitizer passes.
@Suite(
    .serialized,
    .enabled(if: LinuxGuestFixture.unavailableReason == nil, Comment(rawValue: LinuxGuestFixture.unavailableReason ?? "")))
struct LinuxVirtioDriverTests {
    static func guest() throws -> TestKernelGuest { try LinuxGuestFixture.shared.get().restore() }

    @Test func theKernelFindsEveryDeviceOnTheCommandLine() throws {
        let fixture = try LinuxGuestFixture.shared.get()
        #expect(fixture.bootLog.contains("virtio_blk virtio0: [vda]"), "\(fixture.bootLog)")
        #expect(fixture.bootLog.contains("virtio_blk virtio1: [vdb]"), "\(fixture.bootLog)")
        let guest = try Self.guest()
        // Device IDs per the virtio spec: blk 2, net 1, vsock 19, rng 4, balloon 5, console 3.
        let ids = try guest.shell("cat /sys/bus/virtio/devices/virtio*/device")
        #expect(
            ids.split(separator: "\n").map(String.init).prefix(7) == [
                "0x0002", "0x0002", "0x0001", "0x0013", "0x0004", "0x0005", "0x0003",
            ], "\(ids)")
        let release = try TestKernel.release()
        #expect(try guest.shell("uname -r").hasPrefix(release), "boot took \(fixture.bootDuration)")
    }

    @Test func ext4OnVirtioBlkIsWrittenAndReadBackAfterARestart() throws {
        let fixture = try LinuxGuestFixture.shared.get()
        // The first machine ends with this block (its vsock device, CID 3, with it).
        let disk = try { () throws -> String in
            let guest = try Self.guest()
            // The serial attribute ends without a newline: one is added for the prompt to start a line.
            let id = try guest.shell("cat /sys/block/vda/serial; echo")
            #expect(id.hasPrefix("swiftvmm-vda"), "\(id)")
            let mounted = try guest.shell("mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && cat /mnt/hello.txt; echo")
            #expect(mounted.contains(LinuxGuestFixture.hostFileText), "\(mounted)")
            let written = try guest.shell(
                "echo linux-wrote-this-$((6*7)) > /mnt/guest.txt && sync && umount /mnt && echo UNMOUNTED", timeout: .seconds(120))
            #expect(written.contains("UNMOUNTED"), "\(written)")
            // The machine ends through ACPI's \_S5: the VMM exits with status 0.
            guest.vm.typeSerial("poweroff -f\n")
            #expect(try guest.vm.runToCompletion(timeout: .seconds(60)) == .powerOff)
            return guest.backends.disk
        }()

        // The host sees the file in the image, and the filesystem is clean.
        let content = try HostCommand.run("/usr/sbin/debugfs", ["-R", "cat /guest.txt", disk])
        #expect(content == "linux-wrote-this-42\n")
        try HostCommand.run("/usr/sbin/e2fsck", ["-f", "-n", disk])

        // A machine started from the prompt again, on that image, reads it back
        // (its buffers from the boot are dropped first: they predate the write).
        let again = try fixture.restore(disk: disk)
        let readBack = try again.shell("mkdir -p /mnt; blockdev --flushbufs /dev/vda; mount /dev/vda /mnt && cat /mnt/guest.txt")
        #expect(readBack.contains("linux-wrote-this-42"), "\(readBack)")
    }

    /// Issue 13's "Linux to a shell": commands typed at the serial console
    /// are answered, and /proc/cpuinfo shows the fixture's processors.
    @Test func theShellAnswersAtTheSerialConsole() throws {
        let guest = try Self.guest()
        #expect(try guest.shell("echo $((6*7))").hasPrefix("42\n"))
        let release = try TestKernel.release()
        #expect(release.hasPrefix("6.1."), "\(release)")
        #expect(try guest.shell("uname -r").hasPrefix(release + "\n"))
        let cpuinfo = try guest.shell("cat /proc/cpuinfo")
        let processors = cpuinfo.split(separator: "\n").filter { $0.hasPrefix("processor") }
        let cpus = 0..<LinuxGuestFixture.vcpus
        #expect(processors == cpus.map { "processor\t: \($0)" }, "\(cpuinfo)")
        #expect(cpuinfo.contains("vendor_id\t:"), "\(cpuinfo)")
        let flags = try guest.shell("grep -m1 ^flags /proc/cpuinfo")
        #expect(flags.contains(" hypervisor") && flags.contains(" lm"), "\(flags)")
        // Every processor runs work: a program pinned to each reads, in its
        // own /proc/self/stat (field 39), the processor it runs on.
        let masks = cpus.map { String(1 << $0) }.joined(separator: " ")
        let pinned = try guest.shell("for m in \(masks); do taskset $m awk '{print \"cpu\" $39}' /proc/self/stat; done")
        #expect(pinned.hasPrefix(cpus.map { "cpu\($0)\n" }.joined() + TestKernel.prompt), "\(pinned)")
        let online = cpus.count == 1 ? "0" : "0-\(cpus.count - 1)"
        #expect(try guest.shell("cat /sys/devices/system/cpu/online").hasPrefix(online + "\n" + TestKernel.prompt))
        guest.vm.typeSerial("poweroff -f\n")
        #expect(try guest.vm.runToCompletion(timeout: .seconds(60)) == .powerOff)
        #expect(guest.vm.serialText.contains("reboot: Power down"))
    }

    /// Issue 13's S3 with Linux, on this host: the kernel enters S3 through
    /// the PM1a control block, the machine stops with RAM kept
    /// (`.suspended`), and a key at the console wakes it at the FACS waking
    /// vector in real mode. Linux resumes, starts its second processor again
    /// with INIT and SIPI, and the shell runs the rest of the line.
    @Test func echoMemSuspendsToRAMAndAKeyAtTheConsoleWakesIt() throws {
        let guest = try Self.guest()
        #expect(try guest.shell("cat /sys/power/state").contains("mem"))
        let before = guest.vm.serialBytes.count
        try guest.type("echo mem > /sys/power/state; echo resumed-$((6*7)); cat /sys/devices/system/cpu/online")
        #expect(try guest.vm.runToCompletion(timeout: .seconds(120)) == .suspended)
        // The fixture turned console messages off (dmesg -n 1): the kernel's log is read after the wake.
        let asleep = guest.output(since: before)
        #expect(!asleep.contains("resumed-42"), "\(asleep)")
        let facs = try #require(guest.vm.machine.acpiTables?[signature: "FACS"])
        let vector = try guest.vm.machine.memory.readInteger(at: GuestAddress(facs.address.rawValue + 12), as: UInt32.self)
        #expect(vector != 0 && vector < 1 << 20, "Linux's real-mode waking vector: \(vector)")

        try guest.vm.machine.wake(by: .console)
        try guest.runUntilOutput(since: before, contains: "\n" + TestKernel.prompt, timeout: .seconds(120))
        let awake = guest.output(since: before)
        let cpus = LinuxGuestFixture.vcpus
        #expect(awake.contains("resumed-42\n" + (cpus == 1 ? "0" : "0-\(cpus - 1)") + "\n"), "\(awake)")
        let log = try guest.shell("dmesg | grep -E 'PM: suspend|ACPI: PM: Low-level resume'")
        #expect(
            log.contains("PM: suspend entry (deep)") && log.contains("ACPI: PM: Low-level resume complete")
                && log.contains("PM: suspend exit"), "\(log)")
    }

    @Test func aReadOnlyDiskRefusesWrites() throws {
        let guest = try Self.guest()
        let before = try GuestFile.read(guest.backends.readOnlyDisk)
        #expect(try guest.shell("cat /sys/block/vdb/ro").hasPrefix("1"))
        let raw = try guest.shell("dd if=/dev/zero of=/dev/vdb bs=4096 count=1 || echo REFUSED")
        #expect(raw.contains("REFUSED"), "\(raw)")
        let mounted = try guest.shell("mkdir -p /ro && mount /dev/vdb /ro; cat /ro/hello.txt; touch /ro/x || echo REFUSED")
        #expect(mounted.contains(LinuxGuestFixture.hostFileText), "\(mounted)")
        #expect(mounted.contains("Read-only file system"), "\(mounted)")
        #expect(mounted.contains("REFUSED"), "\(mounted)")
        #expect(try GuestFile.read(guest.backends.readOnlyDisk) == before)
    }

    @Test func virtioRngFeedsDevHwrng() throws {
        let guest = try Self.guest()
        #expect(try guest.shell("cat /sys/class/misc/hw_random/rng_current").hasPrefix("virtio_rng"))
        // 4 KiB of random bytes do not compress.
        let sizes = try guest.shell("head -c 4096 /dev/hwrng > /tmp/r; wc -c < /tmp/r; gzip -c /tmp/r | wc -c")
        let numbers = sizes.split(separator: "\n").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        #expect(numbers.count == 2, "\(sizes)")
        if numbers.count == 2 {
            #expect(numbers[0] == 4096)
            #expect(numbers[1] > 4096, "gzip made \(numbers[1]) bytes of 4096 from /dev/hwrng")
        }
    }

    @Test func hvc0WritesReachTheConsoleBackend() throws {
        let guest = try Self.guest()
        let output = try guest.shell("ls /dev/hvc0 && echo from-hvc0-$((6*7)) > /dev/hvc0 && echo SENT")
        #expect(output.contains("SENT"), "\(output)")
        let logged = String(decoding: try GuestFile.read(guest.backends.consoleFile), as: UTF8.self)
        #expect(logged.contains("from-hvc0-42"), "\(logged)")
    }

    @Test func pingCrossesTheTapBothWays() throws {
        let guest = try Self.guest()
        let namespace = "svlv-ns-\(getpid())"
        _ = try? HostCommand.run("/usr/sbin/ip", ["netns", "del", namespace])
        try HostCommand.run("/usr/sbin/ip", ["netns", "add", namespace])
        defer { _ = try? HostCommand.run("/usr/sbin/ip", ["netns", "del", namespace]) }
        // The machine opened the tap in this namespace; the test's own takes it over.
        try HostCommand.run("/usr/sbin/ip", ["link", "set", guest.backends.tap, "netns", namespace])
        try HostCommand.run("/usr/sbin/ip", ["-n", namespace, "addr", "add", "10.78.0.1/24", "dev", guest.backends.tap])
        try HostCommand.run("/usr/sbin/ip", ["-n", namespace, "link", "set", guest.backends.tap, "up"])

        let link = try guest.shell("ip link set eth0 up && ip addr add 10.78.0.2/24 dev eth0 && cat /sys/class/net/eth0/address")
        #expect(link.contains("52:54:00:5f:10:02"), "\(link)")
        let ping = try guest.shell("ping -c 3 -W 5 10.78.0.1", timeout: .seconds(90))
        #expect(ping.contains("3 packets received"), "\(ping)")

        // The host's ping, on a thread of its own: the guest answers only
        // while it runs, which is while this thread types at its shell.
        let hostPing = HostPing(namespace: namespace, address: "10.78.0.2")
        for _ in 0..<40 where !hostPing.isFinished { try guest.shell("sleep 1") }
        let (status, hostOutput) = try hostPing.finish()
        #expect(status == 0, "\(hostOutput)")
        #expect(hostOutput.contains("2 packets received"), "\(hostOutput)")
    }

    @Test func vsockEchoesInBothDirections() throws {
        let guest = try Self.guest()
        // Guest to host: port 5001 is the Unix socket <socket>_5001.
        let listener = try UnixSocket.listen(path: guest.backends.vsockSocket + "_5001")
        defer { close(listener) }
        let server = try VsockHostServer(listener: listener)
        let reply = try guest.shell("vsock-echo connect 2 5001 ping-from-linux", timeout: .seconds(60))
        #expect(reply.contains("reply: pong:ping-from-linux\nend of reply"), "\(reply)")
        #expect(server.finish() == "ping-from-linux")

        // Host to guest: CONNECT 5000 on the device's socket, to a guest listener.
        let before = guest.vm.serialBytes.count
        try guest.type("vsock-echo listen 5000 &")
        try guest.runUntilOutput(since: before, contains: "listening on 5000", timeout: .seconds(30))
        let payload = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let client = try VsockHostClient(socketPath: guest.backends.vsockSocket, port: 5000, payload: payload)
        // With two processors the background job may finish (and say so) before `wait` is typed.
        try guest.shell("wait; echo WAITED", timeout: .seconds(60))
        let echoed = guest.output(since: before)
        #expect(echoed.contains("echoed 3000"), "\(echoed)")
        let result = client.finish()
        #expect(result.handshake.hasPrefix("OK "), "\(result.handshake)")
        #expect(result.echoed == payload)
    }

    @Test func theBalloonTakesMemoryFromTheGuest() throws {
        let guest = try Self.guest()
        let balloon = try #require(guest.vm.machine.virtioTransports.lazy.compactMap { $0.device as? VirtioBalloon }.first)
        let before = try #require(try guest.meminfo("MemTotal"))
        let pages: UInt32 = 1024  // 4 MiB: the guest's driver gives pages one at a time, in emulated ring 0 here
        balloon.setTarget(pages: pages)
        for _ in 0..<30 where balloon.actualPages < pages { try guest.shell("sleep 1") }
        #expect(balloon.actualPages == pages)
        let after = try #require(try guest.meminfo("MemTotal"))
        #expect(before - after == Int(pages) * 4, "MemTotal \(before) kB, then \(after) kB")
        #expect(balloon.releasedPages > 0)

        balloon.setTarget(pages: 0)
        for _ in 0..<30 where balloon.actualPages > 0 { try guest.shell("sleep 1") }
        #expect(balloon.actualPages == 0)
        #expect(try guest.meminfo("MemTotal") == before)
    }

    @Test func rebootResetsTheMachine() throws {
        let guest = try Self.guest()
        guest.vm.typeSerial("reboot -f\n")
        #expect(try guest.vm.runToCompletion(timeout: .seconds(60)) == .reset)
    }
}
