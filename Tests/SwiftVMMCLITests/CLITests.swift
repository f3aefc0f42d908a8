import Firmware
import Foundation
import Testing

@Suite(.serialized) struct CLIRunTests {
    @Test func theDemoGuestTourstheCPUModesAndExitsZero() throws {
        let result = try runSwiftVMM(["run"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        var rest = Substring(result.stdout)
        for stage in ["real mode", "protected mode", "long mode", "user mode", "trap"] {
            guard let range = rest.range(of: stage) else {
                Issue.record("stage '\(stage)' missing or out of order in:\n\(result.stdout)")
                return
            }
            rest = rest[range.upperBound...]
        }
        #expect(!result.stderr.contains("Fatal error"))
    }

    @Test func aFlatRealModeBinaryPrintsToStdoutByteForByte() throws {
        let guest = try TemporaryFile(FirmwareImage.realHello.bytes)
        let result = try runSwiftVMM(["run", guest.path])
        #expect(result.stdout == "Hello from real mode!\n")
        #expect(result.status == 0)
        #expect(result.stderr.contains("debug-exit"), "the VMM's own words go to stderr")
    }

    @Test func protectedAndLongModeFlagsEnterThoseModes() throws {
        let protected = try TemporaryFile(FirmwareImage.protectedHello.bytes)
        let p = try runSwiftVMM(["run", "--mode", "protected", protected.path])
        #expect(p.stdout == "Hello from protected mode!\n" && p.status == 0, "\(p.stderr)")
        let long = try TemporaryFile(FirmwareImage.longHello.bytes)
        let l = try runSwiftVMM(["run", "--mode", "long", "--load-address", "0x100000", "--memory", "64M", long.path])
        #expect(l.stdout == "Hello from long mode!\n" && l.status == 0, "\(l.stderr)")
    }

    @Test func anELFExecutableIsLoadedByItsHeaders() throws {
        let elf = try TemporaryFile(FirmwareImage.elfHello.bytes, name: "hello.elf")
        let result = try runSwiftVMM(["run", elf.path])
        #expect(result.stdout.hasPrefix("Hello from an ELF guest!\n"), "\(result.stderr)")
        #expect(result.status == 0)
    }

    @Test func theDebugExitByteIsTheExitStatus() throws {
        // mov $0x1234,%ax; out %ax,$0xf4; hlt
        let guest = try TemporaryFile([0xb8, 0x34, 0x12, 0xe7, 0xf4, 0xf4])
        let result = try runSwiftVMM(["run", "--mode", "real", "--load-address", "31744", guest.path])
        #expect(result.status == 0x34)
    }

    @Test func haltingWithInterruptsOffExitsZeroAndSaysSo() throws {
        let guest = try TemporaryFile([0xfa, 0xf4])  // cli; hlt
        let result = try runSwiftVMM(["run", guest.path])
        #expect(result.status == 0)
        #expect(result.stderr.contains("halted with interrupts disabled"))
    }

    @Test func severalCPUsRunTheSMPGuestOnThePCPlatform() throws {
        let guest = try TemporaryFile(FirmwareImage.protectedSmp.bytes)
        let result = try runSwiftVMM(["run", "--mode", "protected", "--cpus", "4", guest.path])
        #expect(result.status == 4, "the guest exits with the number of processors that came up; stderr: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(
            Set(lines) == ["cpu 00 bsp", "cpu 01 ap", "cpu 02 ap", "cpu 03 ap", "smp: 04 cpus"] && lines.count == 5, "\(result.stdout)")
    }

    @Test func aTripleFaultFailsWithARegisterDump() throws {
        // lidt [0x7c10] (a zero-limit IDT); int3 -> #GP -> #DF -> triple fault.
        var code: [UInt8] = [0x0f, 0x01, 0x1e, 0x10, 0x7c, 0xcc]
        code += Array(repeating: 0, count: 0x10 - code.count + 6)
        let guest = try TemporaryFile(code)
        let result = try runSwiftVMM(["run", guest.path])
        #expect(result.status == 1)
        // On hardware a shutdown exit; this host's KVM reports an emulation failure.
        #expect(result.stderr.contains("triple fault") || result.stderr.contains("internal error"), "\(result.stderr)")
        for register in ["RIP=", "RAX=", "CR0=", "CR3=", "CR4=", "EFER=", "CS =", "SS ="] {
            #expect(result.stderr.contains(register), "missing \(register) in \(result.stderr)")
        }
    }
}

/// Every kind of bad input: one clear line naming the option or file, a
/// non-zero status, and never a Swift runtime trap.
@Suite(.serialized) struct CLIBadInputTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var arguments: [String]
        var mentions: [String]
        var testDescription: String { arguments.joined(separator: " ") }
    }

    static let hello = FirmwareImage.realHello.bytes

    static let optionCases: [Case] = [
        Case(arguments: ["run", "--memory", "lots", "@GUEST"], mentions: ["--memory", "'lots' is not a number"]),
        Case(arguments: ["run", "--memory", "5000", "@GUEST"], mentions: ["--memory", "not a whole number of 4096-byte pages"]),
        Case(arguments: ["run", "--memory", "4K", "@GUEST"], mentions: ["--memory", "too small"]),
        Case(arguments: ["run", "--memory", "-1", "@GUEST"], mentions: ["--memory"]),
        Case(arguments: ["run", "--memory", "99999999999G", "@GUEST"], mentions: ["--memory", "does not fit in 64 bits"]),
        Case(arguments: ["run", "--memory", "", "@GUEST"], mentions: ["--memory", "empty"]),
        Case(arguments: ["run", "--load-address", "0xzz", "@GUEST"], mentions: ["--load-address", "not a number"]),
        Case(arguments: ["run", "--load-address", "-5", "@GUEST"], mentions: ["--load-address"]),
        Case(arguments: ["run", "--load-address", "0x10000000000000000", "@GUEST"], mentions: ["--load-address", "does not fit"]),
        Case(arguments: ["run", "--entry", "twelve", "@GUEST"], mentions: ["--entry", "not a number"]),
        Case(arguments: ["run", "--mode", "virtual86", "@GUEST"], mentions: ["--mode", "virtual86"]),
        Case(arguments: ["run", "--load-address", "0x8000000", "@GUEST"], mentions: ["@GUEST", "does not fit in guest RAM"]),
        Case(arguments: ["run", "--load-address", "0xffffffffffffffff", "@GUEST"], mentions: ["@GUEST", "does not fit in guest RAM"]),
        Case(arguments: ["run", "--entry", "0x9000000", "@GUEST"], mentions: ["@GUEST", "entry point 0x9000000"]),
        Case(arguments: ["run", "--entry", "0x12345", "@GUEST"], mentions: ["@GUEST", "real-mode entry 0x12345"]),
        Case(arguments: ["run", "/nonexistent/guest.bin"], mentions: ["/nonexistent/guest.bin", "No such file or directory"]),
        Case(arguments: ["run", "/tmp"], mentions: ["/tmp", "not a regular file"]),
        Case(arguments: ["run", "--mode", "long"], mentions: ["--mode", "need a GUEST file"]),
        Case(arguments: ["run", "--bogus", "@GUEST"], mentions: ["--bogus"]),
        Case(arguments: ["run", "--timeout", "soon", "@GUEST"], mentions: ["--timeout", "'soon' is not a duration"]),
        Case(arguments: ["run", "--timeout", "5fortnights", "@GUEST"], mentions: ["--timeout", "unknown unit"]),
        Case(arguments: ["run", "--timeout", "99999999999999999999s", "@GUEST"], mentions: ["--timeout", "does not fit"]),
        Case(arguments: ["run", "--cpus", "0", "@GUEST"], mentions: ["--cpus", "'0' is not a vCPU count", "from 1 to 255"]),
        Case(arguments: ["run", "--cpus", "-1", "@GUEST"], mentions: ["--cpus"]),
        Case(arguments: ["run", "--cpus", "256", "@GUEST"], mentions: ["--cpus", "'256' is not a vCPU count"]),
        Case(arguments: ["run", "--cpus", "99999999999999999999", "@GUEST"], mentions: ["--cpus", "is not a vCPU count"]),
        Case(arguments: ["run", "--cpus", "two", "@GUEST"], mentions: ["--cpus", "'two' is not a vCPU count"]),
        Case(arguments: ["run", "--cpus", "", "@GUEST"], mentions: ["--cpus"]),
        Case(arguments: ["run", "--initrd", "@GUEST"], mentions: ["--initrd needs --kernel"]),
        Case(arguments: ["run", "--cmdline", "quiet", "@GUEST"], mentions: ["--cmdline needs --kernel"]),
        Case(arguments: ["run", "--kernel", "@GUEST", "@GUEST"], mentions: ["--kernel and a GUEST file cannot be given together"]),
        Case(arguments: ["run", "--kernel", "@GUEST", "--mode", "long"], mentions: ["apply to flat binaries"]),
        Case(arguments: ["run", "--kernel", "/nonexistent/vmlinuz"], mentions: ["/nonexistent/vmlinuz", "No such file or directory"]),
        Case(
            arguments: ["run", "--kernel", "@GUEST"],
            mentions: ["@GUEST", "truncated: the bzImage boot sector and setup header needs 518 bytes"]),
        Case(
            arguments: ["run", "--kernel", "@GUEST", "--initrd", "/nonexistent/initrd"], mentions: ["/nonexistent/initrd", "No such file"]),
        Case(
            arguments: ["run", "--kernel", "@GUEST", "--cpuid-mask", "cx16,bogus"], mentions: ["--cpuid-mask", "unknown feature 'bogus'"]),
        Case(arguments: ["run", "--serial2", "foo", "@GUEST"], mentions: ["--serial2", "'foo' is not file:PATH"]),
        Case(arguments: ["run", "--serial2", "file:", "@GUEST"], mentions: ["--serial2", "'file:' is not file:PATH"]),
        Case(
            arguments: ["run", "--serial2", "file:/nonexistent/dir/com2", "@GUEST"],
            mentions: ["--serial2", "cannot open /nonexistent/dir/com2"]),
        Case(arguments: ["run", "--debugcon", "", "@GUEST"], mentions: ["--debugcon", "the path is empty"]),
        Case(
            arguments: ["run", "--debugcon", "/nonexistent/dir/e9", "@GUEST"], mentions: ["--debugcon", "cannot open /nonexistent/dir/e9"]),
        Case(
            arguments: ["run", "--kernel", "@MULTIBOOT", "--initrd", "a,"],
            mentions: ["--initrd", "module 2 of the list has no file name"]),
        Case(
            arguments: ["run", "--kernel", "@MULTIBOOT", "--initrd", "/nonexistent/a.mod arg"],
            mentions: ["/nonexistent/a.mod", "No such file or directory"]),
        Case(
            arguments: ["run", "--kernel", "@BADMULTIBOOT"],
            mentions: ["@BADMULTIBOOT", "Multiboot header checksum (at file offset 0x1008) is 0xe4524ffa, expected 0xe4524ffb"]),
        Case(
            arguments: ["run", "--kernel", "@MULTIBOOT", "--memory", "1M"],
            mentions: ["@MULTIBOOT", "ELF segment 0", "is not inside usable RAM"]),
        // Every option once more: negative, overflowing, unparseable and conflicting values.
        Case(arguments: ["run", "--mode", "", "@GUEST"], mentions: ["--mode", "'real', 'protected' or 'long'"]),
        Case(arguments: ["run", "--mode", "-1", "@GUEST"], mentions: ["--mode"]),
        Case(arguments: ["run", "--load-address", "-0x10", "@GUEST"], mentions: ["--load-address"]),
        Case(arguments: ["run", "--load-address", "1e3", "@GUEST"], mentions: ["--load-address", "'1e3' is not a number"]),
        Case(arguments: ["run", "--load-address", "0x", "@GUEST"], mentions: ["--load-address", "'0x' is not a number"]),
        Case(arguments: ["run", "--load-address", "0x１f", "@GUEST"], mentions: ["--load-address", "is not a number"]),
        Case(arguments: ["run", "--entry", "-1", "@GUEST"], mentions: ["--entry"]),
        Case(arguments: ["run", "--entry", "0x10000000000000000", "@GUEST"], mentions: ["--entry", "does not fit in 64 bits"]),
        Case(arguments: ["run", "--kernel", "@BZIMAGE", "--entry", "0x100000"], mentions: ["apply to flat binaries"]),
        Case(arguments: ["run", "--kernel", "@BZIMAGE", "--load-address", "0x100000"], mentions: ["apply to flat binaries"]),
        Case(arguments: ["run", "--memory", "-64M", "@GUEST"], mentions: ["--memory"]),
        Case(arguments: ["run", "--memory", "18446744073709551616", "@GUEST"], mentions: ["--memory", "does not fit in 64 bits"]),
        Case(arguments: ["run", "--memory", "17179869184G", "@GUEST"], mentions: ["--memory", "does not fit in 64 bits"]),
        Case(arguments: ["run", "--memory", "1.5G", "@GUEST"], mentions: ["--memory", "'1.5G' is not a number"]),
        Case(arguments: ["run", "--memory", "６４M", "@GUEST"], mentions: ["--memory", "'６４M' is not a number"]),
        Case(arguments: ["run", "--memory", "64Q", "@GUEST"], mentions: ["--memory", "unknown size suffix"]),
        Case(arguments: ["run", "--memory", "0", "@GUEST"], mentions: ["--memory", "too small"]),
        Case(arguments: ["run", "--kernel", "@BZIMAGE", "--memory", "1M"], mentions: ["@BZIMAGE", "give the guest more memory"]),
        Case(arguments: ["run", "--timeout", "-5s", "@GUEST"], mentions: ["--timeout"]),
        Case(arguments: ["run", "--timeout", "", "@GUEST"], mentions: ["--timeout", "empty"]),
        Case(arguments: ["run", "--timeout", "1.5s", "@GUEST"], mentions: ["--timeout", "unknown unit"]),
        Case(arguments: ["run", "--timeout", "½", "@GUEST"], mentions: ["--timeout", "'½' is not a duration"]),
        Case(arguments: ["run", "--timeout", "9223372036854775807m", "@GUEST"], mentions: ["--timeout", "does not fit in 64 bits"]),
        Case(arguments: ["run", "--cpuid-mask", "-1", "@GUEST"], mentions: ["--cpuid-mask"]),
        Case(arguments: ["run", "--cpuid-mask", "bogus", "@GUEST"], mentions: ["--cpuid-mask", "unknown feature 'bogus'"]),
        Case(arguments: ["run", "--log-level", "loud", "@GUEST"], mentions: ["--log-level", "'loud'"]),
        Case(arguments: ["run", "--log-level", "-1", "@GUEST"], mentions: ["--log-level"]),
        Case(arguments: ["run", "--stats=yes", "@GUEST"], mentions: ["--stats", "does not take any value"]),
        Case(arguments: ["run", "--kernel", ""], mentions: ["cannot open: No such file or directory"]),
        Case(arguments: ["run", "--kernel", "/tmp"], mentions: ["/tmp", "not a regular file"]),
        Case(arguments: ["run", "--kernel", "@BZIMAGE", "--initrd", "/tmp"], mentions: ["/tmp", "not a regular file"]),
        Case(arguments: ["run", "--kernel", "@BZIMAGE", "--initrd", ""], mentions: ["cannot open: No such file or directory"]),
        Case(
            arguments: ["run", "--kernel", "@BZIMAGE", "--cmdline", String(repeating: "a", count: 5000)],
            mentions: ["@BZIMAGE", "kernel command line is 5000 bytes, the kernel accepts at most"]),
        Case(
            arguments: ["run", "--kernel", "@BZIMAGE", "--cmdline", "console=ttyS0\u{1}"],
            mentions: ["@BZIMAGE", "kernel command line byte 13 is 0x1, expected printable ASCII"]),
        Case(arguments: ["run", "@GUEST", "@GUEST"], mentions: ["Unexpected argument"]),
    ]

    /// The files the placeholders in `optionCases` stand for.
    static func placeholders() throws -> [String: TemporaryFile] {
        var broken = FirmwareImage.multibootInfo.bytes
        if let offset = (0..<(8192 - 12)).first(where: { broken[$0..<$0 + 4] == [0x02, 0xb0, 0xad, 0x1b] }) {
            broken[offset + 8] ^= 1  // the checksum's low bit
        }
        return [
            "@GUEST": try TemporaryFile(hello),
            "@MULTIBOOT": try TemporaryFile(FirmwareImage.multibootInfo.bytes, name: "mb.elf"),
            "@BADMULTIBOOT": try TemporaryFile(broken, name: "bad.elf"),
            "@BZIMAGE": try TemporaryFile(FirmwareImage.bzImageZeropageCheck.bytes, name: "bzImage"),
        ]
    }

    @Test(arguments: optionCases)
    func badOptionsAndFilesFailWithOneClearLine(_ testCase: Case) throws {
        let files = try Self.placeholders()
        let arguments = testCase.arguments.map { files[$0]?.path ?? $0 }
        let result = try runSwiftVMM(arguments)
        #expect(result.status != 0)
        #expect(result.status == 64, "usage errors exit with EX_USAGE; stderr: \(result.stderr)")
        #expect(result.stdout.isEmpty)
        let firstLine = result.stderr.split(separator: "\n").first.map(String.init) ?? ""
        for mention in testCase.mentions.map({ files[$0]?.path ?? $0 }) {
            #expect(firstLine.contains(mention), "expected '\(mention)' in: \(result.stderr)")
        }
        #expect(!result.stderr.contains("Fatal error"))
        #expect(!result.stderr.contains("Stack dump"))
    }

    /// A size the host cannot map is a runtime failure (status 1) with one
    /// line; it used to trap converting the size for mmap.
    @Test(arguments: ["0xfffffffffffff000", "0x8000000000000000"])
    func aMemorySizeTheHostCannotMapFailsWithOneLine(_ size: String) throws {
        let guest = try TemporaryFile(Self.hello)
        let result = try runSwiftVMM(["run", "--memory", size, guest.path])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("swiftvmm: error: cannot map"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(!result.stderr.contains("Fatal error"))
    }

    @Test func anEmptyFileIsRefused() throws {
        let empty = try TemporaryFile([])
        let result = try runSwiftVMM(["run", empty.path])
        #expect(result.status == 64)
        #expect(result.stderr.contains("\(empty.path): the file is empty"))
    }

    @Test func anImageLargerThanRAMIsRefused() throws {
        let big = try TemporaryFile(Array(repeating: 0x90, count: 2 << 20))
        let result = try runSwiftVMM(["run", "--memory", "1M", big.path])
        #expect(result.status == 64)
        #expect(result.stderr.contains(big.path) && result.stderr.contains("does not fit in guest RAM"), "\(result.stderr)")
    }

    @Test func anELFWithFlatBinaryOptionsIsRefused() throws {
        let elf = try TemporaryFile(FirmwareImage.elfHello.bytes)
        let result = try runSwiftVMM(["run", "--load-address", "0x200000", elf.path])
        #expect(result.status == 64)
        #expect(result.stderr.contains("ELF executable"))
    }

    @Test func aCorruptELFNamesTheField() throws {
        var bytes = FirmwareImage.elfHello.bytes
        bytes[18] = 3  // e_machine = EM_386
        let elf = try TemporaryFile(bytes)
        let result = try runSwiftVMM(["run", elf.path])
        #expect(result.status == 64)
        #expect(result.stderr.contains("ELF e_machine is 0x3, expected 62 (EM_X86_64)"), "\(result.stderr)")
    }
}
