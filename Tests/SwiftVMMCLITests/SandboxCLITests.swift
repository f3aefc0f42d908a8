import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The seccomp filters in the real `swiftvmm` binary: each thread kind's test
/// hook (`SWIFTVMM_SECCOMP_TEST_VIOLATION`, debug builds only) makes a
/// `ptrace` call no filter allows, from that thread right after its filter
/// is installed.
@Suite struct SandboxCLITests {
    /// Sanitized builds run without filters (their runtimes' own calls, LeakSanitizer's `ptrace`, are no VMM thread's).
    static let sanitized = ProcessInfo.processInfo.environment.keys.contains { $0 == "ASAN_OPTIONS" || $0 == "TSAN_OPTIONS" }

    /// The arguments that start a thread of `kind` (the demo guest runs in every case).
    static func arguments(for kind: String, socketDirectory: String) -> [String] {
        switch kind {
        case "timer": return ["run", "--timeout", "30s"]
        case "io": return ["run", "--rng"]
        case "gdb": return ["run", "--gdb", "unix:\(socketDirectory)/gdb.sock"]
        default: return ["run"]  // vcpu, console, process (the main thread)
        }
    }

    @Test(
        .disabled(if: sanitized, "SKIPPED: sanitized builds run without seccomp filters"),
        arguments: ["vcpu", "timer", "io", "gdb", "console", "process"])
    func aForbiddenCallKillsTheProcessWithSIGSYSNamingTheThread(kind: String) throws {
        let directory = try TemporaryDirectory()
        let result = try runSwiftVMM(
            Self.arguments(for: kind, socketDirectory: directory.path), timeout: 60,
            environment: ["SWIFTVMM_SECCOMP_TEST_VIOLATION": kind])
        let name = kind == "process" ? "main" : kind
        #expect(result.killedBySignal && result.status == SIGSYS, "status \(result.status): \(result.stderr)")
        #expect(result.stderr.contains("seccomp: the \(name) thread"), "\(result.stderr)")
        #expect(result.stderr.contains("forbidden system call ptrace (101): killed with SIGSYS"), "\(result.stderr)")
    }

    @Test(
        .disabled(if: sanitized, "SKIPPED: sanitized builds run without seccomp filters"),
        arguments: ["vcpu", "timer", "io", "gdb", "console", "process"])
    func logModeReportsTheCallAndRunsOn(kind: String) throws {
        let directory = try TemporaryDirectory()
        let result = try runSwiftVMM(
            Self.arguments(for: kind, socketDirectory: directory.path) + ["--seccomp", "log"], timeout: 60,
            environment: ["SWIFTVMM_SECCOMP_TEST_VIOLATION": kind])
        #expect(!result.killedBySignal && result.status == 0, "status \(result.status): \(result.stderr)")
        #expect(result.stderr.contains("forbidden system call ptrace (101): allowed (--seccomp log)"), "\(result.stderr)")
        #expect(result.stdout.contains("user mode: back from trap"), "the demo ran to its end: \(result.stdout)")
    }

    @Test(.disabled(if: sanitized, "SKIPPED: sanitized builds run without seccomp filters"))
    func theAPIEventLoopIsFilteredToo() throws {
        let directory = try TemporaryDirectory()
        let result = try runSwiftVMM(
            ["serve", "--api-sock", "\(directory.path)/api.sock"], timeout: 60, environment: ["SWIFTVMM_SECCOMP_TEST_VIOLATION": "api"])
        #expect(result.killedBySignal && result.status == SIGSYS, "status \(result.status): \(result.stderr)")
        #expect(result.stderr.contains("seccomp: the api thread"), "\(result.stderr)")
    }

    @Test func offTurnsTheHookIntoAnOrdinaryFailedCall() throws {
        let result = try runSwiftVMM(["run", "--seccomp", "off"], timeout: 60, environment: ["SWIFTVMM_SECCOMP_TEST_VIOLATION": "vcpu"])
        #expect(result.status == 0 && !result.stderr.contains("seccomp"), "\(result.stderr)")
    }
}

/// `--user`, `--chroot` and the serial rate limit, on the real binary.
@Suite struct PrivilegeCLITests {
    static let isRoot = getuid() == 0

    // Under sanitizers LeakSanitizer's exit-time ptrace and /proc reads fail after setuid or chroot.
    @Test(
        .enabled(if: isRoot, "SKIPPED: dropping to another user needs root"),
        .disabled(if: SandboxCLITests.sanitized, "SKIPPED: LeakSanitizer cannot attach after setuid"))
    func afterUserTheVMMCannotOpenARootOnlyFileAndHasNoCapabilities() throws {
        let directory = try TemporaryDirectory(["secret": Array("root only\n".utf8)])
        chmod(directory.path("secret"), 0o600)
        let result = try runSwiftVMM(
            ["run", "--user", "65534:65534"], timeout: 60, environment: ["SWIFTVMM_SANDBOX_TEST_PROBE": directory.path("secret")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("user mode: back from trap"))
        #expect(
            result.stderr.contains("sandbox probe: open \(directory.path("secret")): errno \(EACCES); CapEff 0; uid 65534"),
            "\(result.stderr)")
    }

    /// The virtio I/O thread is running (with its own filter) when the main
    /// thread switches user: glibc has it switch too, which its filter allows.
    @Test(
        .enabled(if: isRoot, "SKIPPED: dropping to another user needs root"),
        .disabled(if: SandboxCLITests.sanitized, "SKIPPED: LeakSanitizer cannot attach after setuid"))
    func threadsAlreadyRunningFollowTheSwitchToAnotherUser() throws {
        let result = try runSwiftVMM(["run", "--rng", "--user", "65534:65534"], timeout: 60)
        #expect(result.status == 0 && !result.stderr.contains("seccomp"), "\(result.stderr)")
        #expect(result.stdout.contains("user mode: back from trap"))
    }

    @Test func withoutUserARootVMMStillDropsEveryCapability() throws {
        let result = try runSwiftVMM(["run"], timeout: 60, environment: ["SWIFTVMM_SANDBOX_TEST_PROBE": "/proc/self/status"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("open /proc/self/status: OK; CapEff 0;"), "\(result.stderr)")
    }

    @Test(
        .enabled(if: isRoot, "SKIPPED: chroot needs root"),
        .disabled(if: SandboxCLITests.sanitized, "SKIPPED: LeakSanitizer needs /proc at exit"))
    func chrootPutsTheHostFilesystemOutOfReach() throws {
        let root = try TemporaryDirectory()
        let result = try runSwiftVMM(
            ["run", "--chroot", root.path], timeout: 60, environment: ["SWIFTVMM_SANDBOX_TEST_PROBE": "/etc/passwd"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("user mode: back from trap"))
        #expect(result.stderr.contains("sandbox probe: open /etc/passwd: errno \(ENOENT)"), "\(result.stderr)")
    }

    @Test func aBadUserIsAUsageError() throws {
        let result = try runSwiftVMM(["run", "--user", "nobody"])
        #expect(result.status == 64 && result.stderr.contains("--user: 'nobody' is not UID:GID"), "\(result.stderr)")
    }

    /// A real-mode guest that writes `blocks` × 4 KiB to COM2 with `rep outsb`, then exits 0 through port 0xf4.
    static func floodGuest(blocks: UInt32) -> [UInt8] {
        let count = withUnsafeBytes(of: blocks.littleEndian, Array.init)
        return [0xBA, 0xF8, 0x02]  // mov dx, 0x2f8
            + [0x66, 0xBD] + count  // mov ebp, blocks
            + [0xFC]  // cld
            + [0xBE, 0x00, 0x80]  // loop: mov si, 0x8000
            + [0xB9, 0x00, 0x10]  // mov cx, 0x1000
            + [0xF3, 0x6E]  // rep outsb
            + [0x66, 0x4D]  // dec ebp
            + [0x75, 0xF4]  // jnz loop
            + [0xB0, 0x00, 0xE6, 0xF4, 0xF4]  // mov al, 0; out 0xf4, al; hlt
    }

    static func peakRSSKiB(_ stderr: String) -> Int? {
        guard let range = stderr.range(of: "peak RSS ") else { return nil }
        return Int(stderr[range.upperBound...].prefix { $0.isNumber })
    }

    /// 512 KiB by default (`SWIFTVMM_FLOOD_KIB`): on this host every byte of `rep outsb`
    /// in real mode is an exit (~14 us), so a flood is slow to make; `swiftvmm-bench --only seccomp` floods more.
    @Test(.disabled(if: SandboxCLITests.sanitized, "SKIPPED: slow under sanitizers"))
    func aSerialFloodToAFileIsCutToTheRateLimitWithFlatMemory() throws {
        let kibibytes = UInt32(ProcessInfo.processInfo.environment["SWIFTVMM_FLOOD_KIB"] ?? "") ?? 512
        let directory = try TemporaryDirectory([
            "flood.bin": Self.floodGuest(blocks: max(kibibytes / 4, 1)), "trickle.bin": Self.floodGuest(blocks: 1),
        ])
        let output = directory.path("com2.log")
        let small = try runSwiftVMM(["run", "--stats", "--serial2", "file:\(output)", directory.path("trickle.bin")], timeout: 60)
        #expect(small.status == 0, "\(small.stderr)")
        let start = Date()
        let flood = try runSwiftVMM(
            ["run", "--stats", "--serial-rate-limit", "8K", "--serial2", "file:\(output)", directory.path("flood.bin")], timeout: 300)
        let elapsed = Date().timeIntervalSince(start)
        #expect(flood.status == 0, "\(flood.stderr)")
        let size = try FileManager.default.attributesOfItem(atPath: output)[.size] as? Int ?? -1
        // 64 KiB of burst, then 8 KiB/s for at most as long as the process lived.
        let bound = 64 << 10 + Int(elapsed * Double(8 << 10)) + 4096
        #expect(size >= 64 << 10 && size <= bound && size < Int(kibibytes) << 10, "\(size) bytes written in \(elapsed) s (bound \(bound))")
        let before = Self.peakRSSKiB(small.stderr) ?? 0
        let after = Self.peakRSSKiB(flood.stderr) ?? Int.max
        #expect(after - before < 8 * 1024, "peak RSS \(before) KiB for 4 KiB, \(after) KiB for \(kibibytes) KiB")
    }
}
