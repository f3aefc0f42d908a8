import Firmware
import Foundation
import Testing

/// `swiftvmm run --kernel` with a Multiboot kernel, QEMU-style: modules and
/// their command lines from `--initrd`, COM2 and the debug console to files.
@Suite(.serialized) struct MultibootCLITests {
    @Test func aMultibootKernelGetsItsModulesCommandLineAndPorts() throws {
        let kernel = try TemporaryFile(FirmwareImage.multibootInfo.bytes, name: "mb.elf")
        let directory = (kernel.path as NSString).deletingLastPathComponent
        let a = directory + "/a"
        let b = directory + "/b,c"  // a comma in a file name is written ',,'
        try Data("alpha module".utf8).write(to: URL(fileURLWithPath: a))
        try Data("beta".utf8).write(to: URL(fileURLWithPath: b))
        let (com2, debugcon) = (directory + "/com2.txt", directory + "/e9.txt")

        let result = try runSwiftVMM([
            "run", "--kernel", kernel.path, "--initrd", "\(a) arg,\(directory)/b,,c", "--cmdline", "x",
            "--serial2", "file:\(com2)", "--debugcon", debugcon,
        ])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "multiboot: eax=0x2badb002 ebx=0x00009000 flags=0x0000024d")
        #expect(lines.contains("cmdline '\(kernel.path) x'"), "the image's name, then --cmdline")
        #expect(lines.contains("modules 0x00000002"))
        let modules = lines.filter { $0.hasPrefix("module ") }
        #expect(modules.count == 2)
        #expect(modules.first?.hasSuffix(" '\(a) arg' data 'alpha module'") == true, "\(modules)")
        #expect(modules.last?.hasSuffix(" '\(b)' data 'beta'") == true, "\(modules)")
        #expect(lines.contains("fw_cfg cmdline size 0x00000002 'x'"))
        #expect(lines.contains("fw_cfg ram 0x0000000008000000 cpus 0x0001 max_cpus 0x0001"), "128M, QEMU's default")
        #expect(lines.last == "done")
        #expect(try String(contentsOfFile: com2, encoding: .utf8) == "multiboot guest on COM2\n")
        #expect(try String(contentsOfFile: debugcon, encoding: .utf8) == "multiboot guest on debugcon\n")
        #expect(result.stderr.contains("debug-exit"))
    }

    @Test func withoutModulesOrCommandLineTheLineIsTheImageName() throws {
        let kernel = try TemporaryFile(FirmwareImage.multibootInfo.bytes, name: "kernel.elf")
        let result = try runSwiftVMM(["run", "--kernel", kernel.path, "--memory", "32M"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("cmdline '\(kernel.path)'\n"))
        #expect(result.stdout.contains("modules 0x00000000\n"))
        #expect(result.stdout.contains("mem_upper=0x00007c00"), "32 MiB - 1 MiB, in KiB")
    }

    @Test func aFlatGuestCanSendCOM2ToAFileToo() throws {
        // mov $0x2f8, %dx; mov $'2', %al; out %al, %dx; mov $0xf4, %dx; out %al, %dx (status '2')
        let guest = try TemporaryFile([0xba, 0xf8, 0x02, 0xb0, 0x32, 0xee, 0xba, 0xf4, 0x00, 0xee])
        let com2 = (guest.path as NSString).deletingLastPathComponent + "/com2"
        let result = try runSwiftVMM(["run", "--serial2", "file:\(com2)", guest.path])
        #expect(result.status == 0x32, "stderr: \(result.stderr)")
        #expect(try String(contentsOfFile: com2, encoding: .utf8) == "2")
    }
}
