import Foundation
import Testing
import VMMTesting

/// ip(8), for the test's network namespace and tap.
private let debianGuestIPTool = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// Debian's own kernel with Debian's own virtio modules (loaded from the
/// initramfs of scripts/make-linux-guest.sh, `virtio_mmio` finding the devices
/// through the ACPI DSDT's LNRO0005 entries: Debian builds it without
/// command-line devices) on swiftvmm's virtio-blk, virtio-net and vsock, as
/// `swiftvmm run` gives them. Debian's kernel reaches its shell only where
/// kernel code runs natively: hardware virtualization, reported as skipped
/// elsewhere (on a PVM host it needs most of an hour).
@Suite(
    .serialized,
    .enabled(if: HostCapabilities.hasHardwareVirtualization, Comment(rawValue: HostCapabilities.noHardwareVirtualizationReason)),
    .enabled(if: getuid() == 0 && debianGuestIPTool != nil, "SKIPPED: needs root and ip(8) for a network namespace and a tap"))
struct DebianVirtioGuestCLITests {
    /// The guest kit, built once for this suite and `LinuxCLITests`.
    static var guest: Result<String, any Error> { LinuxCLITests.guest }

    /// The guest loads the modules, then reads the disk's first sector, pings
    /// the host over the tap and lists its virtio devices; the host checks
    /// each answer (the image's marker, the echo reply, the device IDs).
    @Test func debianKernelDrivesDiskNetworkAndVsockWithItsOwnModules() throws {
        let ip = try #require(debianGuestIPTool)
        let directory = try Self.guest.get()
        let scratch = NSTemporaryDirectory() + "swiftvmm-debian-virtio-\(getpid())"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let image = scratch + "/disk.img"
        var contents = Data("swiftvmm-debian-disk".utf8)
        contents.append(Data(count: (8 << 20) - contents.count))
        try contents.write(to: URL(fileURLWithPath: image))

        let namespace = "svmm-dv-\(getpid())"
        defer { _ = try? runCommand(ip, ["netns", "delete", namespace]) }
        try makeTapNamespace(namespace, ip: ip)
        let script = [
            "head -c 20 /dev/vda; echo", "cat /sys/block/vda/size", "ip addr add 10.0.2.15/24 dev eth0", "ip link set eth0 up",
            "ping -c 1 -W 10 10.0.2.1 && echo PING-OK", "cat /sys/class/net/eth0/address", "cat /sys/bus/virtio/devices/*/device",
            "test -c /dev/vsock && echo VSOCK-OK",
        ].joined(separator: "; ")
        let encoded = Data(script.utf8).base64EncodedString()
        let result = try runCommand(
            ip,
            [
                "netns", "exec", namespace, try swiftvmmBinary().path, "run", "--kernel", directory + "/bzImage", "--initrd",
                directory + "/initramfs.cpio.gz", "--disk", "path=\(image)", "--net", "tap=svmmtap0,mac=52:54:00:ab:cd:ef", "--vsock",
                "cid=3,socket=\(scratch)/v.sock", "--cmdline", "console=ttyS0 swiftvmm.mode=cmd swiftvmm.cmd=\(encoded)", "--timeout",
                "240s",
            ], timeout: 300)
        let output = result.stdout
        #expect(result.status == 0, "stdout: \(output)\nstderr: \(result.stderr)")
        for module in ["virtio_mmio", "virtio_blk", "virtio_net", "vmw_vsock_virtio_transport"] {
            #expect(output.contains("swiftvmm-init: loaded \(module)"), "\(module) did not load: \(output)")
        }
        // (The guest's tty ends its lines with \r\n.)
        #expect(output.contains("swiftvmm-debian-disk\r\n"), "the disk's first bytes: \(output)")
        #expect(output.contains("\n16384\r\n"), "8 MiB is 16384 sectors: \(output)")
        #expect(output.contains("PING-OK"), "the host answered over the tap: \(output)")
        #expect(output.contains("52:54:00:ab:cd:ef"), "the MAC from --net: \(output)")
        for id in ["0x0001", "0x0002", "0x0013"] {
            #expect(output.contains(id), "virtio device id \(id) on the bus: \(output)")
        }
        #expect(output.contains("VSOCK-OK"), "\(output)")
        #expect(output.contains("SWIFTVMM-CMD-EXIT 0"), "\(output)")
    }
}
