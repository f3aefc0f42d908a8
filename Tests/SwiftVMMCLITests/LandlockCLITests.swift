import Foundation
import Sandbox
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Landlock in the real `swiftvmm` binary: the test hook
/// (`SWIFTVMM_LANDLOCK_TEST_PROBE=KIND:read|create:PATH`, debug builds only)
/// opens PATH from the first thread of KIND right after it is confined.
@Suite struct LandlockCLITests {
    static let landlockABI = Int(Sandbox.landlockABI)
    static let unavailable = SandboxCLITests.sanitized || landlockABI < 1
    static let reason: Comment =
        SandboxCLITests.sanitized
        ? "SKIPPED: sanitized builds run without Landlock (LeakSanitizer reads /proc at exit)"
        : "SKIPPED: this kernel has no Landlock (errno \(-landlockABI))"

    static func probe(_ kind: String, _ operation: String, _ path: String) -> [String: String] {
        ["SWIFTVMM_LANDLOCK_TEST_PROBE": "\(kind):\(operation):\(path)"]
    }

    /// A vCPU thread reaches no path at all, with seccomp on or off (Landlock
    /// sets PR_SET_NO_NEW_PRIVS itself); `--landlock off` lets the same open through.
    @Test(.disabled(if: unavailable, reason), arguments: [[], ["--seccomp", "off"], ["--landlock", "off"]])
    func aVCPUThreadCannotOpenAFileOutsideTheReachablePaths(extra: [String]) throws {
        let directory = try TemporaryDirectory(["outside": Array("secret\n".utf8)])
        let result = try runSwiftVMM(["run"] + extra, timeout: 60, environment: Self.probe("vcpu", "read", directory.path("outside")))
        let expected = extra.contains("off") && extra.contains("--landlock") ? "OK" : "errno \(EACCES)"
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("user mode: back from trap"), "the demo ran to its end: \(result.stdout)")
        #expect(
            result.stderr.contains("landlock probe: the vcpu thread 'vcpu 0': read \(directory.path("outside")): \(expected)"),
            "\(result.stderr)")
    }

    /// The main thread may create files in the snapshot directory (which
    /// exists, so it is granted without a terminal) and read
    /// `/proc/self/status` for `--stats`, and nothing else.
    @Test(.disabled(if: unavailable, reason), arguments: [true, false])
    func theMainThreadReachesTheSnapshotDirectoryAndNothingElse(inside: Bool) throws {
        let directory = try TemporaryDirectory(["snapshots/keep": []])
        let target = directory.path(inside ? "snapshots/probe" : "elsewhere")
        let result = try runSwiftVMM(
            ["run", "--stats", "--snapshot-dir", directory.path("snapshots")], timeout: 60,
            environment: Self.probe("process", "create", target))
        #expect(result.status == 0, "\(result.stderr)")
        let expected = inside ? "OK" : "errno \(EACCES)"
        #expect(result.stderr.contains("landlock probe: the process thread 'main': create \(target): \(expected)"), "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: target) == inside)
        #expect(PrivilegeCLITests.peakRSSKiB(result.stderr) != nil, "--stats still reads /proc/self/status: \(result.stderr)")
    }

    /// Without a terminal and with no snapshot directory yet, nothing is created and nothing is granted.
    @Test(.disabled(if: unavailable, reason))
    func noSnapshotDirectoryIsCreatedWithoutATerminal() throws {
        let directory = try TemporaryDirectory()
        let result = try runSwiftVMM(
            ["run", "--snapshot-dir", directory.path("never")], timeout: 60,
            environment: Self.probe("process", "read", directory.path))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.path("never")))
        #expect(result.stderr.contains("create") == false)
        #expect(result.stderr.contains("read \(directory.path): errno \(EACCES)"), "\(result.stderr)")
    }
}
