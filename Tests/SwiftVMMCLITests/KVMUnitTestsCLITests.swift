import Foundation
import Testing

/// kvm-unit-tests, the KVM project's conformance suite, as
/// `scripts/kvm-unit-tests.sh` runs it under the `swiftvmm` built next to
/// these tests: the entries that pass on this project's hosts keep passing,
/// and `realmode.flat`, a Multiboot kernel linked at 0x8000 over swiftvmm's
/// usual boot structures, boots. The suite's source is test data outside the
/// repository (`../shared/kvm-unit-tests`, or `$KVM_UNIT_TESTS_SOURCE`);
/// without it, or without gcc and make to build it, these are skipped with the reason.
@Suite(.serialized, .enabled(if: KVMUnitTestsSource.unavailableReason == nil, Comment(rawValue: KVMUnitTestsSource.skipReason)))
struct KVMUnitTestsCLITests {
    typealias Source = KVMUnitTestsSource

    /// Runs the script with `arguments`; its output and status.
    func script(_ arguments: [String], timeout: TimeInterval) throws -> CommandResult {
        try runProcess(
            URL(fileURLWithPath: "/bin/bash"),
            [Source.script, "--source", Source.source, "--swiftvmm", try swiftvmmBinary().path] + arguments, timeout: timeout)
    }

    @Test func theEntriesThatPassHereStillPass() throws {
        // Each entry is capped at 20 s: a regression that hangs fails in time.
        let result = try script(["--max-timeout", "20"] + Source.passingEntries, timeout: 300)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        for entry in Source.passingEntries {
            let line = lines.first { $0.split(separator: " ").dropFirst().first.map(String.init) == entry }
            #expect(line?.hasPrefix("PASS ") == true, "\(entry): \(line ?? "no result")\n\(result.stderr)")
        }
        #expect(
            lines.contains(
                "SUMMARY: \(Source.passingEntries.count) PASS, 0 SKIP, 0 FAIL of \(Source.passingEntries.count) entries under swiftvmm"))
        #expect(result.status == 0)
    }

    @Test func realmodeFlatLinkedAt0x8000Boots() throws {
        // Loaded at 0x8000-0xda30, where swiftvmm's stack and Multiboot
        // information usually go: they move, and the test runs in real mode.
        let suite = try script(["--suite-dir"], timeout: 300).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let environment = FileManager.default.temporaryDirectory.appendingPathComponent("kut-env-\(getpid())")
        try Data("TEST_DEVICE=0\n".utf8).write(to: environment)
        defer { try? FileManager.default.removeItem(at: environment) }
        let result = try runSwiftVMM(
            ["run", "--kernel", suite + "/x86/realmode.flat", "--initrd", environment.path, "--timeout", "3s"], timeout: 60)
        #expect(!result.stderr.contains("overlaps"), "\(result.stderr)")
        #expect(result.stdout.contains("PASS: xchg 1"), "\(result.stdout)\n\(result.stderr)")
    }
}
