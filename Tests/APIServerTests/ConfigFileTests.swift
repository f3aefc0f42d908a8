import Firmware
import Foundation
import Testing

/// `swiftvmm serve --config-file FILE --no-api`: Firecracker's config file,
/// booted at once; every error names the file and the field.
@Suite struct ConfigFileTests {
    func serve(_ arguments: [String]) throws -> ServedVMM {
        try ServedVMM(arguments: ["serve"] + arguments, socketPath: "", waitForSocket: false)
    }

    @Test func aConfigFileBootsTheMachineWithoutAnAPI() throws {
        let directory = try ScratchDirectory()
        let guest = try slowTicker(in: directory)
        let file = try directory.write(
            "vm.json",
            #"{"machine-config": {"vcpu_count": 1, "mem_size_mib": 32}, "x-swiftvmm": {"guest": "\#(guest)", "mode": "protected"}}"#)
        let served = try serve(["--config-file", file, "--no-api"])
        #expect(try served.waitForExit() == 0x30, "\(served.stderr)")
        #expect(served.stdout.split(separator: "\n").map(String.init) == tickerLines(1...24))
    }

    @Test func aConfigFileWithAnAPIStartsAndServes() throws {
        let directory = try ScratchDirectory()
        let guest = try slowTicker(in: directory)
        let file = try directory.write("vm.json", #"{"x-swiftvmm": {"guest": "\#(guest)", "mode": "protected"}}"#)
        let socket = directory.file("api.sock")
        let served = try ServedVMM(arguments: ["serve", "--config-file", file, "--api-sock", socket], socketPath: socket)
        #expect(try served.get("/").json["state"] as? String == "Running")
        let config = try served.get("/vm/config").json
        #expect((config["x-swiftvmm"] as? [String: Any])?["guest"] as? String == guest)
        #expect(try served.waitForExit() == 0x30)
    }

    static let badFiles: [(String, String)] = [
        ("{", "vm.json: An error occurred when deserializing the json body of a request: the body is not JSON (malformed)."),
        (#"{"boot-source": {"kernel_image_path": "/k"}, "mmds-config": {}}"#, "unknown field `mmds-config`"),
        (#"{"machine-config": {"vcpu_count": 1}}"#, "missing field `machine-config.mem_size_mib`"),
        (
            #"{"machine-config": {"vcpu_count": 1, "mem_size_mib": 8, "smt": 1}}"#,
            "invalid type for `machine-config.smt`: expected a boolean"
        ),
        (#"{"machine-config": {"vcpu_count": 99, "mem_size_mib": 8}}"#, "machine-config.vcpu_count: 99 is out of range; expected 1 to 32"),
        (#"{"boot-source": {"kernel_image_path": "/k", "initrd": "/i"}}"#, "unknown field `boot-source.initrd`"),
        (
            #"{"drives": [{"drive_id": "rootfs", "is_root_device": true, "path_on_host": "/x", "cache": 1}]}"#,
            "unknown field `drives[0].cache`"
        ),
        (
            #"{"x-swiftvmm": {"guest": "GUEST", "mode": "protected"}, "drives": [{"drive_id": "rootfs", "is_root_device": true, "path_on_host": "/x"}]}"#,
            "disk image /x: cannot open: no such file"
        ),
        (#"{"x-swiftvmm": {"mode": "long"}}"#, "boot-source: missing"),
        (#"{"x-swiftvmm": {"guest": "/nonexistent/guest.bin"}}"#, "x-swiftvmm.guest"),
        (#"{"boot-source": {"kernel_image_path": "/nonexistent/vmlinux"}}"#, "boot-source.kernel_image_path"),
        (#"{"x-swiftvmm": {"guest": "GUEST", "mode": "protected", "load_address": "0xzz"}}"#, "x-swiftvmm.load_address"),
        (#"{"logger": {"level": "Chatty"}}"#, "logger.level: 'Chatty' is not one of"),
    ]

    @Test func aDriveAndAnEntropyDeviceFromTheConfigFileReachTheGuest() throws {
        let directory = try ScratchDirectory()
        let kernel = try directory.write("virtio-blk.elf", FirmwareImage.multibootVirtioBlk.bytes)
        let image = try directory.write("disk.img", [UInt8](repeating: 0xee, count: 1 << 20))
        let file = try directory.write(
            "vm.json",
            #"{"boot-source": {"kernel_image_path": "\#(kernel)"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 32}, "#
                + #""drives": [{"drive_id": "scratch", "is_root_device": false, "path_on_host": "\#(image)"}], "entropy": {}}"#)
        let served = try serve(["--config-file", file, "--no-api"])
        #expect(try served.waitForExit() == 0, "\(served.stdout)\(served.stderr)")
        #expect(served.stdout.contains("blk: flush status 0"), "\(served.stdout)")
        #expect(served.stdout.contains("blk: id 'scratch'"), "the drive id is what get-id answers: \(served.stdout)")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: image)))
        // The blk guest writes its pattern to sectors 1-8 of the image on the host.
        #expect(bytes[512..<4608].contains { $0 != 0xee }, "the guest wrote to the file named in drives[].path_on_host")
        #expect(bytes[(32 * 512)...].allSatisfy { $0 == 0xee })
    }

    @Test func badConfigFilesAreOneLineNamingTheField() throws {
        let directory = try ScratchDirectory()
        let guest = try slowTicker(in: directory)
        for (text, expected) in Self.badFiles {
            let file = try directory.write("vm.json", text.replacing("GUEST", with: guest))
            let served = try serve(["--config-file", file, "--no-api"])
            let status = try served.waitForExit()
            #expect(status == 64, "\(text): \(served.stderr)")
            #expect(served.stderr.contains(expected), "\(text): \(served.stderr)")
            #expect(served.stdout.isEmpty)
        }
        let missing = try serve(["--config-file", directory.file("absent.json"), "--no-api"])
        #expect(try missing.waitForExit() == 64)
        #expect(missing.stderr.contains("cannot read \(directory.file("absent.json"))"))
        let noAPI = try serve(["--no-api"])
        #expect(try noAPI.waitForExit() == 64)
        #expect(noAPI.stderr.contains("--no-api needs --config-file"))
    }
}
