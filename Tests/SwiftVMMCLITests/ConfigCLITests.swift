import Firmware
import Foundation
import Testing

/// A temporary directory of named files, removed when the test's scope ends.
final class TemporaryDirectory {
    let path: String
    init(_ files: [String: [UInt8]] = [:]) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-config-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, bytes) in files { try write(name, bytes) }
    }
    func write(_ name: String, _ bytes: [UInt8]) throws {
        let file = URL(fileURLWithPath: path).appendingPathComponent(name)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: file)
    }
    func write(_ name: String, _ text: String) throws { try write(name, Array(text.utf8)) }
    func path(_ name: String) -> String { path + "/" + name }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// `swiftvmm run --config FILE` and `--print-config`.
@Suite(.serialized) struct ConfigCLITests {
    static let hello = FirmwareImage.realHello.bytes

    @Test func aConfigFileRunsTheGuestAsTheFlagsDo() throws {
        let directory = try TemporaryDirectory(["guests/hello.bin": Self.hello])
        // The guest's path is relative to the file's directory, not to the current one.
        try directory.write("vm.json", #"{"guest": "guests/hello.bin", "mode": "real", "memory": "64M", "timeout": "60s"}"#)
        let fromFile = try runSwiftVMM(["run", "--config", directory.path("vm.json")])
        let fromFlags = try runSwiftVMM([
            "run", "--mode", "real", "--memory", "64M", "--timeout", "60s", directory.path("guests/hello.bin"),
        ])
        #expect(fromFlags.stdout == "Hello from real mode!\n" && fromFlags.status == 0, "\(fromFlags.stderr)")
        #expect(fromFile.stdout == fromFlags.stdout, "stderr: \(fromFile.stderr)")
        #expect(fromFile.status == fromFlags.status)
        #expect(fromFile.stderr == fromFlags.stderr)
    }

    @Test func outputFilesInAConfigAreRelativeToItsDirectoryToo() throws {
        let directory = try TemporaryDirectory(["hello.bin": Self.hello])
        try directory.write("vm.json", #"{"guest": "hello.bin", "debugcon": "out/e9.log", "serial2": "file:out/com2.log"}"#)
        try FileManager.default.createDirectory(atPath: directory.path("out"), withIntermediateDirectories: true)
        let result = try runSwiftVMM(["run", "--config", directory.path("vm.json")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: directory.path("out/e9.log")))
        #expect(FileManager.default.fileExists(atPath: directory.path("out/com2.log")))
    }

    @Test func flagsOverrideTheFilesFields() throws {
        let directory = try TemporaryDirectory(["hello.bin": Self.hello])
        // Both values in the file are wrong; the flags that replace them are not.
        try directory.write("vm.json", #"{"guest": "missing.bin", "memory": "4K", "cpus": 2, "stats": true}"#)
        let result = try runSwiftVMM(["run", "--config", directory.path("vm.json"), "--memory", "32M", directory.path("hello.bin")])
        #expect(result.stdout == "Hello from real mode!\n" && result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("stats:"), "the file's stats: true still applies")

        let printed = try runSwiftVMM(["run", "--config", directory.path("vm.json"), "--memory", "32M", "--print-config", "/x/hello.bin"])
        #expect(printed.status == 0, "\(printed.stderr)")
        #expect(
            printed.stdout == """
                {
                  "cpus" : 2,
                  "guest" : "/x/hello.bin",
                  "memory" : "32M",
                  "stats" : true
                }

                """, "\(printed.stdout)")
    }

    @Test func printConfigPrintsWhatTheFlagsSayAndRunsNothing() throws {
        let result = try runSwiftVMM([
            "run", "--print-config", "--kernel", "/boot/vmlinuz", "--initrd", "/boot/initrd.img", "--cmdline", "console=ttyS0 quiet",
            "--cpuid-mask", "cx16,xsave", "--cpus", "2", "--memory", "512M", "--timeout", "2m", "--serial2", "file:/tmp/com2",
            "--debugcon", "/tmp/e9", "--log-level", "debug", "--stats", "--snapshot-dir", "/tmp/snaps",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty, "nothing ran: \(result.stderr)")
        #expect(
            result.stdout == """
                {
                  "cmdline" : "console=ttyS0 quiet",
                  "cpuid_mask" : [
                    "cx16",
                    "xsave"
                  ],
                  "cpus" : 2,
                  "debugcon" : "/tmp/e9",
                  "initrd" : "/boot/initrd.img",
                  "kernel" : "/boot/vmlinuz",
                  "log_level" : "debug",
                  "memory" : "512M",
                  "serial2" : "file:/tmp/com2",
                  "snapshot_dir" : "/tmp/snaps",
                  "stats" : true,
                  "timeout" : "2m"
                }

                """, "\(result.stdout)")
    }

    @Test func printConfigRoundTripsToTheSameMachine() throws {
        let directory = try TemporaryDirectory(["hello.bin": Self.hello])
        let flags = ["--mode", "real", "--load-address", "0x7c00", "--memory", "64M", "--cpus", "1", directory.path("hello.bin")]
        let printed = try runSwiftVMM(["run", "--print-config"] + flags)
        #expect(printed.status == 0, "\(printed.stderr)")
        try directory.write("printed.json", printed.stdout)
        let again = try runSwiftVMM(["run", "--config", directory.path("printed.json"), "--print-config"])
        #expect(again.stdout == printed.stdout)
        let fromFile = try runSwiftVMM(["run", "--config", directory.path("printed.json")])
        let fromFlags = try runSwiftVMM(["run"] + flags)
        #expect(fromFile.stdout == "Hello from real mode!\n" && fromFile.stdout == fromFlags.stdout, "\(fromFile.stderr)")
        #expect(
            fromFile.status == fromFlags.status && fromFile.stderr == fromFlags.stderr,
            "status \(fromFile.status) vs \(fromFlags.status); stderr:\n\(fromFile.stderr)\nvs:\n\(fromFlags.stderr)")
    }

    @Test func printConfigChecksTheValuesFirst() throws {
        let result = try runSwiftVMM(["run", "--print-config", "--memory", "12X"])
        #expect(result.status == 64 && result.stdout.isEmpty)
        #expect(result.stderr.hasPrefix("Error: --memory: '12X' has an unknown size suffix"), "\(result.stderr)")
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var json: String
        var mentions: [String]
        var extraArguments: [String] = []
        var testDescription: String { json }
    }

    /// `@DIR` in a mention stands for the config file's directory.
    static let badFiles: [Case] = [
        Case(json: #"{"memroy": "64M"}"#, mentions: ["vm.json: unknown field 'memroy'; did you mean 'memory'?"]),
        Case(json: #"{"memory": "12X"}"#, mentions: ["vm.json: memory: '12X' has an unknown size suffix (use K, M, G or none for bytes)"]),
        Case(json: #"{"memory": "4K"}"#, mentions: ["vm.json: memory: 4K is too small; the minimum is 1M"]),
        Case(json: #"{"memory": true}"#, mentions: ["vm.json: memory: expected a size", "found true"]),
        Case(json: #"{"cpus": "two"}"#, mentions: [#"vm.json: cpus: expected a whole number from 1 to 255, found "two""#]),
        Case(json: #"{"cpus": 0}"#, mentions: ["vm.json: cpus: '0' is not a vCPU count"]),
        Case(json: #"{"mode": "virtual86", "guest": "hello.bin"}"#, mentions: ["vm.json: mode: 'virtual86' is not a CPU mode"]),
        Case(json: #"{"log_level": "loud"}"#, mentions: ["vm.json: log_level: 'loud' is not a log level"]),
        Case(json: #"{"stats": "yes"}"#, mentions: ["vm.json: stats: expected true or false"]),
        Case(json: #"{"load_address": "0xzz", "guest": "hello.bin"}"#, mentions: ["vm.json: load_address: '0xzz' is not a number"]),
        Case(json: #"{"entry": "twelve", "guest": "hello.bin"}"#, mentions: ["vm.json: entry: 'twelve' is not a number"]),
        Case(json: #"{"timeout": "soon"}"#, mentions: ["vm.json: timeout: 'soon' is not a duration"]),
        Case(json: #"{"cpuid_mask": ["cx16", "bogus"]}"#, mentions: ["vm.json: cpuid_mask: unknown feature 'bogus'"]),
        Case(json: #"{"serial2": "foo"}"#, mentions: ["vm.json: serial2: 'foo' is not file:PATH"]),
        Case(json: #"{"serial2": "file:no/such/dir/com2"}"#, mentions: ["vm.json: serial2: cannot open @DIR/no/such/dir/com2"]),
        Case(json: #"{"debugcon": ""}"#, mentions: ["vm.json: debugcon: the path is empty"]),
        Case(json: #"{"snapshot_dir": ""}"#, mentions: ["vm.json: snapshot_dir: the path is empty"]),
        Case(json: #"{"kernel": "hello.bin", "guest": "hello.bin"}"#, mentions: ["vm.json: kernel and guest cannot be given together"]),
        Case(json: #"{"initrd": "hello.bin"}"#, mentions: ["vm.json: initrd needs kernel"]),
        Case(json: #"{"mode": "long"}"#, mentions: ["vm.json: mode, load_address and entry need guest"]),
        Case(json: #"{"guest": "nope.bin"}"#, mentions: ["vm.json: guest: @DIR/nope.bin: cannot open: No such file or directory"]),
        Case(json: #"{"guest": "empty.bin"}"#, mentions: ["vm.json: guest: @DIR/empty.bin: the file is empty"]),
        Case(json: #"{"kernel": "nope"}"#, mentions: ["vm.json: kernel: @DIR/nope: cannot open: No such file or directory"]),
        Case(
            json: #"{"kernel": "hello.bin"}"#,
            mentions: ["vm.json: kernel: @DIR/hello.bin: truncated: the bzImage boot sector and setup header needs 518 bytes"]),
        Case(
            json: #"{"guest": "hello.bin", "load_address": "0x8000000"}"#,
            mentions: ["vm.json: guest: @DIR/hello.bin:", "does not fit in guest RAM"]),
        Case(
            json: #"{"guest": "hello.elf", "load_address": "0x200000"}"#,
            mentions: ["vm.json: guest: @DIR/hello.elf: is an ELF executable", "mode, load_address and entry apply to flat binaries only"]),
        Case(
            json: "{\"memory\": \"64M\",\n \"cpus\": }",
            mentions: ["vm.json: not valid JSON: line 2, column 10: expected a value, found '}'"]),
        Case(json: "", mentions: ["vm.json: not valid JSON: line 1, column 1: expected a value, found end of file"]),
        Case(json: "[1, 2]", mentions: ["vm.json: expected a JSON object of machine settings, found an array"]),
        // A flag that overrides the file is named as a flag.
        Case(json: #"{"memory": "64M"}"#, mentions: ["--memory: '12X'"], extraArguments: ["--memory", "12X"]),
        Case(
            json: #"{"kernel": "hello.bin"}"#, mentions: ["vm.json: kernel and a GUEST file cannot be given together"],
            extraArguments: ["@DIR/hello.bin"]),
    ]

    @Test(arguments: badFiles)
    func everyConfigErrorIsOneLineNamingTheFileAndField(_ testCase: Case) throws {
        let directory = try TemporaryDirectory([
            "hello.bin": Self.hello, "empty.bin": [], "hello.elf": FirmwareImage.elfHello.bytes,
        ])
        try directory.write("vm.json", testCase.json)
        let arguments = testCase.extraArguments.map { $0.replacing("@DIR", with: directory.path) }
        let result = try runSwiftVMM(["run", "--config", directory.path("vm.json")] + arguments)
        #expect(result.status == 64, "stderr: \(result.stderr)")
        #expect(result.stdout.isEmpty)
        let firstLine = result.stderr.split(separator: "\n").first.map(String.init) ?? ""
        #expect(firstLine.hasPrefix("Error: "), "\(result.stderr)")
        for mention in testCase.mentions.map({ $0.replacing("@DIR", with: directory.path) }) {
            #expect(firstLine.contains(mention), "expected '\(mention)' in: \(result.stderr)")
        }
        if !testCase.mentions.contains(where: { $0.hasPrefix("--") }) {
            #expect(firstLine.contains(directory.path("vm.json")), "the file is named: \(firstLine)")
        }
        #expect(!result.stderr.contains("Fatal error"))
    }

    @Test func aMissingConfigFileADirectoryOrAHugeFileAreNamed() throws {
        let missing = try runSwiftVMM(["run", "--config", "/nonexistent/vm.json"])
        #expect(missing.status == 64)
        #expect(missing.stderr.hasPrefix("Error: /nonexistent/vm.json: cannot open: No such file or directory"), "\(missing.stderr)")

        let directory = try TemporaryDirectory()
        let folder = try runSwiftVMM(["run", "--config", directory.path])
        #expect(folder.status == 64)
        #expect(folder.stderr.hasPrefix("Error: \(directory.path): is not a regular file"), "\(folder.stderr)")

        try directory.write("big.json", [UInt8](repeating: 0x20, count: 2 << 20))
        let big = try runSwiftVMM(["run", "--config", directory.path("big.json")])
        #expect(big.status == 64)
        #expect(big.stderr.hasPrefix("Error: \(directory.path("big.json")): is 2097152 bytes; a config file is at most"), "\(big.stderr)")
    }

    @Test func helpExplainsTheConfigFile() throws {
        let help = try runSwiftVMM(["run", "--help"])
        #expect(help.stdout.contains("--config <file>"))
        #expect(help.stdout.contains("--print-config"))
        #expect(help.stdout.contains("relative to the"))
    }
}
