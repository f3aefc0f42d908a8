import SwiftVMMConfig
import Testing
import VMCore

/// The config file's format: round trips, and one clear line for each kind of mistake.
@Suite struct MachineSpecJSONTests {
    static let full = MachineSpec(
        guest: "hello.bin", mode: "protected", loadAddress: "0x100000", entry: "0x100010", memory: "64M", kernel: "bzImage",
        initrd: "initrd.img", cmdline: "console=ttyS0 quiet", cpuidMask: ["cx16", "xsave"], cpus: "2", timeout: "30s",
        serial2: "file:com2.log", debugcon: "e9.log", logLevel: "debug", stats: true, snapshotDir: "snapshots",
        disk: ["path=a.img", "path=b.img,readonly=on"], net: ["tap=tap0"], vsock: "cid=3,socket=v.sock", rng: true, balloon: true,
        consoleDevice: "socket:hvc0.sock", gdb: "tcp:127.0.0.1:1234", gdbWait: true)

    func decode(_ text: String, file: String = "vm.json") throws(SpecError) -> MachineSpec {
        try MachineSpec(json: Array(text.utf8), file: file)
    }

    /// The message decoding `text` fails with.
    func error(_ text: String) -> String {
        do {
            _ = try decode(text)
            return "no error"
        } catch {
            return error.description
        }
    }

    @Test func everyFieldRoundTrips() throws {
        let text = Self.full.jsonText
        #expect(try decode(text) == Self.full)
        #expect(Self.full.givenFields == Set(MachineSpec.Field.allCases), "the example sets every field")
    }

    @Test func anEmptySpecIsAnEmptyObject() throws {
        #expect(MachineSpec().jsonText == "{}\n")
        #expect(try decode("{}") == MachineSpec())
        #expect(try decode(" { } ") == MachineSpec())
    }

    @Test func encodingSortsKeysAndLeavesOutAbsentFields() {
        let text = MachineSpec(guest: "/guests/hello.bin", memory: "64M", cpus: "2").jsonText
        #expect(text == "{\n  \"cpus\" : 2,\n  \"guest\" : \"/guests/hello.bin\",\n  \"memory\" : \"64M\"\n}\n", "\(text)")
    }

    @Test func keysAreTheFlagsInSnakeCase() {
        #expect(
            MachineSpec.Field.allCases.map(\.rawValue).sorted() == [
                "balloon", "cmdline", "console_device", "cpuid_mask", "cpus", "debugcon", "disk", "entry", "gdb", "gdb_wait", "guest",
                "initrd", "kernel", "load_address", "log_level", "memory", "mode", "net", "rng", "serial2", "snapshot_dir", "stats",
                "timeout", "vsock",
            ])
        #expect(MachineSpec.Field.loadAddress.flag == "--load-address")
        #expect(MachineSpec.Field.cpuidMask.flag == "--cpuid-mask")
        #expect(MachineSpec.Field.guest.flag == "GUEST")
    }

    @Test func numbersAreAcceptedWhereTheyAreNatural() throws {
        let spec = try decode(#"{"guest": "a.bin", "memory": 134217728, "load_address": 31744, "entry": 31744, "timeout": 5, "cpus": 4}"#)
        #expect(spec == MachineSpec(guest: "a.bin", loadAddress: "31744", entry: "31744", memory: "134217728", cpus: "4", timeout: "5"))
        let resolved = try spec.resolve(source: .configFile("vm.json"))
        #expect(resolved.memorySize == 128 << 20 && resolved.loadAddress == 0x7c00 && resolved.timeout == .seconds(5))
        // A negative number is a number of the right type, and then the wrong value, as on the command line.
        let negative = try decode(#"{"guest": "a.bin", "load_address": -1}"#)
        #expect(throws: SpecError("vm.json: load_address: '-1' is not a number (use decimal or 0x-prefixed hex)", field: .loadAddress)) {
            try negative.resolve(source: .configFile("vm.json"))
        }
    }

    @Test func aCPUIDMaskIsAnArrayOrACommaString() throws {
        #expect(try decode(#"{"cpuid_mask": "cx16,xsave"}"#).cpuidMask == ["cx16", "xsave"])
        #expect(try decode(#"{"cpuid_mask": ["cx16", "xsave"]}"#).cpuidMask == ["cx16", "xsave"])
        #expect(try decode(#"{"cpuid_mask": []}"#).cpuidMask == [])
    }

    @Test func nullMeansNotGiven() throws {
        #expect(try decode(#"{"memory": null, "stats": null}"#) == MachineSpec())
    }

    @Test(arguments: [
        (#"{"memroy": "64M"}"#, "vm.json: unknown field 'memroy'; did you mean 'memory'?"),
        (#"{"colour": "blue"}"#, "vm.json: unknown field 'colour'; the fields are guest, mode, load_address"),
        (#"{"memory": true}"#, #"vm.json: memory: expected a size: a string such as "128M" or a whole number of bytes, found true"#),
        (#"{"memory": 1.5}"#, "vm.json: memory: expected a size: a string such as \"128M\" or a whole number of bytes, found 1.5"),
        (#"{"cpus": "two"}"#, #"vm.json: cpus: expected a whole number from 1 to 255, found "two""#),
        (#"{"cpus": [2]}"#, "vm.json: cpus: expected a whole number from 1 to 255, found an array"),
        (#"{"stats": "yes"}"#, #"vm.json: stats: expected true or false, found "yes""#),
        (#"{"guest": 7}"#, "vm.json: guest: expected the path of a guest image (a string), found 7"),
        (#"{"kernel": {}}"#, "vm.json: kernel: expected the path of a kernel image (a string), found an object"),
        (#"{"mode": 16}"#, "vm.json: mode: expected 'real', 'protected' or 'long', found 16"),
        (#"{"load_address": true}"#, "vm.json: load_address: expected an address"),
        (#"{"timeout": false}"#, "vm.json: timeout: expected a duration"),
        (#"{"cpuid_mask": 3}"#, "vm.json: cpuid_mask: expected an array of feature names or a comma-separated string, found 3"),
        (#"{"cpuid_mask": ["cx16", 3]}"#, "vm.json: cpuid_mask: item 2: expected a feature name (a string), found 3"),
        (#"{"log_level": 1}"#, "vm.json: log_level: expected trace, debug, info, notice, warning, error, critical, found 1"),
        (#"{"serial2": ["file:x"]}"#, #"vm.json: serial2: expected "file:PATH", found an array"#),
        (#"{"cmdline": "a\nb", "initrd": 0}"#, "vm.json: initrd: expected a file or a Multiboot module list (a string), found 0"),
        (#"{"guest": "a\"b\n", "debugcon": 1}"#, "vm.json: debugcon: expected the path of a file (a string), found 1"),
        (#"{"snapshot_dir": true}"#, "vm.json: snapshot_dir: expected the path of a directory (a string), found true"),
        ("[]", "vm.json: expected a JSON object of machine settings, found an array"),
        ("\"64M\"", #"vm.json: expected a JSON object of machine settings, found "64M""#),
        ("7", "vm.json: expected a JSON object of machine settings, found 7"),
    ])
    func wrongFieldsAndTypesAreOneLineNamingTheField(_ text: String, _ expected: String) {
        let message = error(text)
        #expect(message.hasPrefix(expected), "\(message)")
        #expect(!message.contains("\n"))
    }

    @Test(arguments: [
        ("", "vm.json: not valid JSON: line 1, column 1: expected a value, found end of file"),
        ("{\"memory\": \"64M\",\n \"cpus\": }", "vm.json: not valid JSON: line 2, column 10: expected a value, found '}'"),
        ("{\"memory\": \"64M\" \"cpus\": 2}", "vm.json: not valid JSON: line 1, column 18: expected ',' or '}', found '\"'"),
        ("{\"memory\": \"64M\",}", "vm.json: not valid JSON: line 1, column 18: expected a field name in double quotes, found '}'"),
        ("{memory: 1}", "vm.json: not valid JSON: line 1, column 2: expected a field name in double quotes, found 'm'"),
        ("{\"memory\": 64M}", "vm.json: not valid JSON: line 1, column 14: expected ',' or '}', found 'M'"),
        ("{\"memory\": 0x100}", "vm.json: not valid JSON: line 1, column 13: expected ',' or '}', found 'x'"),
        (
            "{\"memory\": \"64M}",
            "vm.json: not valid JSON: line 1, column 17: the string that starts at line 1, column 12 has no closing '\"'"
        ),
        ("{\"cpus\": 1, \"cpus\": 2}", "vm.json: not valid JSON: line 1, column 13: field 'cpus' is given twice"),
        ("{} {}", "vm.json: not valid JSON: line 1, column 4: unexpected '{' after the end of the JSON value"),
        ("{\"guest\": \"a\\qb\"}", "vm.json: not valid JSON: line 1, column 14: unknown escape: a backslash followed by 'q'"),
        ("{\"stats\": True}", "vm.json: not valid JSON: line 1, column 11: expected a value, found 'T'"),
        (String(repeating: "[", count: 100_000), "vm.json: not valid JSON: line 1, column 65: nested more than 64 deep"),
    ])
    func malformedJSONIsOneLineWithThePosition(_ text: String, _ expected: String) {
        #expect(error(text) == expected)
    }

    @Test func escapesInStringsDecode() throws {
        #expect(try decode(#"{"cmdline": "a\"b\\c\u0041\n"}"#).cmdline == "a\"b\\cA\n")
    }

    @Test func flagsOverrideTheFileFieldByField() {
        let file = MachineSpec(guest: "a.bin", memory: "64M", cpus: "2", stats: true)
        let flags = MachineSpec(memory: "32M", stats: false)
        #expect(file.overridden(by: flags) == MachineSpec(guest: "a.bin", memory: "32M", cpus: "2", stats: false))
        #expect(file.overridden(by: MachineSpec()) == file)
    }
}

/// `resolve(source:)`: the CLI's checks, with errors that name the field as it was given.
@Suite struct MachineSpecResolveTests {
    func message(_ spec: MachineSpec, _ source: SpecSource = .flags) -> String {
        do {
            _ = try spec.resolve(source: source)
            return "no error"
        } catch {
            return error.description
        }
    }

    @Test func defaultsFillAbsentFields() throws {
        let resolved = try MachineSpec().resolve()
        #expect(resolved.memorySize == nil && resolved.vcpuCount == 1 && resolved.hiddenCPUFeatures.isEmpty)
        #expect(resolved.logLevel == .info && !resolved.stats && resolved.timeout == nil && resolved.mode == nil)
        #expect(resolved.guestPath == nil && resolved.kernelPath == nil && resolved.serial2Path == nil)
    }

    @Test func everyValueIsParsed() throws {
        var spec = MachineSpecJSONTests.full
        (spec.kernel, spec.initrd, spec.cmdline) = (nil, nil, nil)
        let resolved = try spec.resolve(source: .configFile("/etc/vm/vm.json"))
        #expect(resolved.memorySize == 64 << 20)
        #expect(resolved.vcpuCount == 2)
        #expect(resolved.hiddenCPUFeatures.map(\.name) == ["cx16", "xsave"])
        #expect(resolved.timeout == .seconds(30))
        #expect(resolved.logLevel == .debug && resolved.stats)
        #expect(resolved.serial2Path == "/etc/vm/com2.log" && resolved.debugconPath == "/etc/vm/e9.log")
        #expect(resolved.snapshotDirectory == "/etc/vm/snapshots")
    }

    /// Each check, named as a flag and as a field of a config file.
    @Test(arguments: [
        (MachineSpec(memory: "12X"), "--memory: '12X' has an unknown size suffix (use K, M, G or none for bytes)", "memory: '12X'"),
        (MachineSpec(memory: "4K"), "--memory: 4K is too small; the minimum is 1M", "memory: 4K is too small"),
        (MachineSpec(memory: "5000"), "--memory: '5000' (5000 bytes) is not a whole number of 4096-byte pages", "memory: '5000'"),
        (
            MachineSpec(loadAddress: "0xzz"), "--load-address: '0xzz' is not a number (use decimal or 0x-prefixed hex)",
            "load_address: '0xzz'"
        ),
        (MachineSpec(entry: "twelve"), "--entry: 'twelve' is not a number (use decimal or 0x-prefixed hex)", "entry: 'twelve'"),
        (
            MachineSpec(cpuidMask: ["cx16", "bogus"]), "--cpuid-mask: unknown feature 'bogus'; known: sse3,",
            "cpuid_mask: unknown feature 'bogus'"
        ),
        (MachineSpec(cpus: "0"), "--cpus: '0' is not a vCPU count; expected a whole number from 1 to 255", "cpus: '0' is not a vCPU count"),
        (MachineSpec(cpus: "256"), "--cpus: '256' is not a vCPU count", "cpus: '256'"),
        (MachineSpec(timeout: "soon"), "--timeout: 'soon' is not a duration", "timeout: 'soon' is not a duration"),
        (MachineSpec(timeout: "5fortnights"), "--timeout: '5fortnights' has an unknown unit", "timeout: '5fortnights'"),
        (MachineSpec(serial2: "foo"), "--serial2: 'foo' is not file:PATH (COM2 can be sent to a file)", "serial2: 'foo' is not file:PATH"),
        (MachineSpec(serial2: "file:"), "--serial2: 'file:' is not file:PATH", "serial2: 'file:'"),
        (MachineSpec(debugcon: ""), "--debugcon: the path is empty", "debugcon: the path is empty"),
        (MachineSpec(snapshotDir: ""), "--snapshot-dir: the path is empty", "snapshot_dir: the path is empty"),
        (MachineSpec(mode: "virtual86"), "--mode: 'virtual86' is not a CPU mode", "mode: 'virtual86' is not a CPU mode"),
        (MachineSpec(logLevel: "loud"), "--log-level: 'loud' is not a log level", "log_level: 'loud' is not a log level"),
    ])
    func aBadValueIsNamedAsItWasGiven(_ spec: MachineSpec, _ asFlag: String, _ inFile: String) {
        #expect(message(spec).hasPrefix(asFlag), "\(message(spec))")
        let fromFile = message(spec, .configFile("conf/vm.json"))
        #expect(fromFile.hasPrefix("conf/vm.json: " + inFile), "\(fromFile)")
    }

    @Test func conflictsAreNamedAsTheyWereGiven() {
        let both = MachineSpec(guest: "a.bin", kernel: "k")
        #expect(message(both) == "--kernel and a GUEST file cannot be given together")
        #expect(message(both, .configFile("vm.json")) == "vm.json: kernel and guest cannot be given together")
        #expect(
            message(both, .configFile("vm.json", overriddenByFlags: [.guest]))
                == "vm.json: kernel and a GUEST file cannot be given together")

        let initrd = MachineSpec(initrd: "i")
        #expect(message(initrd) == "--initrd needs --kernel")
        #expect(message(initrd, .configFile("vm.json")) == "vm.json: initrd needs kernel")
        #expect(message(MachineSpec(cmdline: "quiet")) == "--cmdline needs --kernel")
        #expect(message(MachineSpec(cmdline: "quiet"), .configFile("vm.json")) == "vm.json: cmdline needs kernel")

        let flat = MachineSpec(mode: "long", kernel: "k")
        #expect(
            message(flat)
                == "--mode, --load-address and --entry apply to flat binaries; a --kernel is entered as its boot protocol says")
        #expect(
            message(flat, .configFile("vm.json"))
                == "vm.json: mode, load_address and entry apply to flat binaries; a kernel is entered as its boot protocol says")

        let demo = MachineSpec(mode: "long")
        #expect(message(demo) == "--mode, --load-address and --entry need a GUEST file; the built-in demo guest chooses its own")
        #expect(
            message(demo, .configFile("vm.json"))
                == "vm.json: mode, load_address and entry need guest; the built-in demo guest chooses its own")
    }

    /// With a config file and flags, each value is named where it came from.
    @Test func aFlagOverridingTheFileIsNamedAsAFlag() {
        let spec = MachineSpec(memory: "12X", cpus: "0")
        #expect(message(spec, .configFile("vm.json", overriddenByFlags: [.memory])).hasPrefix("--memory: '12X'"))
        #expect(message(spec, .configFile("vm.json", overriddenByFlags: [.cpus])).hasPrefix("vm.json: memory: '12X'"))
    }

    @Test func theChecksComeInTheCLIsOrder() {
        // Memory is checked before the vCPU count, which is checked before the addresses.
        #expect(message(MachineSpec(loadAddress: "x", memory: "x", cpus: "x")).hasPrefix("--memory"))
        #expect(message(MachineSpec(loadAddress: "x", cpus: "x")).hasPrefix("--cpus"))
    }

    @Test func relativePathsInAFileAreRelativeToItsDirectory() throws {
        let spec = MachineSpec(guest: "guests/hello.bin", serial2: "file:out/com2", debugcon: "/abs/e9")
        let nested = try spec.resolve(source: .configFile("conf/vm.json"))
        #expect(nested.guestPath == "conf/guests/hello.bin" && nested.serial2Path == "conf/out/com2" && nested.debugconPath == "/abs/e9")
        let here = try spec.resolve(source: .configFile("vm.json"))
        #expect(here.guestPath == "guests/hello.bin")
        let root = try spec.resolve(source: .configFile("/vm.json"))
        #expect(root.guestPath == "/guests/hello.bin")
        let flag = try spec.resolve(source: .configFile("conf/vm.json", overriddenByFlags: [.guest]))
        #expect(flag.guestPath == "guests/hello.bin", "a flag's path is relative to the current directory")
        #expect(SpecSource.configFile("conf/vm.json").subject(file: "k", of: .kernel) == "conf/vm.json: kernel: conf/k")
        #expect(SpecSource.flags.subject(file: "k", of: .kernel) == "k")
    }
}

/// `gdb` and `gdb_wait` (`--gdb`, `--gdb-wait`): where the stub listens, checked as the other fields are.
@Suite struct MachineSpecGDBTests {
    func message(_ spec: MachineSpec, _ source: SpecSource = .flags) -> String {
        do {
            _ = try spec.resolve(source: source)
            return "no error"
        } catch {
            return error.description
        }
    }

    @Test func endpointsAreCheckedAndWaitNeedsAnEndpoint() throws {
        let resolved = try MachineSpec(gdb: "unix:/tmp/vm.sock", gdbWait: true).resolve()
        #expect(resolved.gdb == "unix:/tmp/vm.sock" && resolved.gdbWait)
        #expect(try MachineSpec(gdb: "tcp:localhost:1234").resolve().gdbWait == false)
        #expect(message(MachineSpec(gdb: "tcp:localhost")).contains("--gdb: 'tcp:localhost' is not unix:PATH or tcp:HOST:PORT"))
        #expect(message(MachineSpec(gdb: "tcp::99999")).contains("is not unix:PATH or tcp:HOST:PORT"))
        #expect(message(MachineSpec(gdb: "unix:")).contains("is not unix:PATH"))
        #expect(message(MachineSpec(gdbWait: true)) == "--gdb-wait needs --gdb")
        #expect(message(MachineSpec(gdb: "serial"), .configFile("vm.json")).contains("vm.json: gdb: 'serial'"))
    }
}
