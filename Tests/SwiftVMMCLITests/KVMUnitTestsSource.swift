import Foundation

/// Where the kvm-unit-tests suite and its runner are, which entries pass on
/// this project's hosts, and why the suite cannot run when it cannot.
enum KVMUnitTestsSource {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let script = repository.appendingPathComponent("scripts/kvm-unit-tests.sh").path
    static let source =
        ProcessInfo.processInfo.environment["KVM_UNIT_TESTS_SOURCE"]
        ?? repository.deletingLastPathComponent().appendingPathComponent("shared/kvm-unit-tests").path

    /// Entries that pass here in a few seconds in all (about 15 s together;
    /// `s3` sleeps until the next second's RTC alarm); the README's triage
    /// table has the rest and why, and which passing entries are too slow here for CI.
    static let passingEntries = [
        "smptest", "smptest3", "idt_test", "setjmp", "la57", "vmexit_cpuid", "vmexit_inl_pmtimer", "s3", "rdpru", "memory",
        "pcid-enabled", "pcid-disabled", "pcid-asymmetric", "xsave",
    ]

    static let unavailableReason: String? = {
        guard FileManager.default.fileExists(atPath: source) else {
            return "kvm-unit-tests is not at \(source) (set KVM_UNIT_TESTS_SOURCE to a checkout or tarball)"
        }
        for tool in ["gcc", "make"]
        where !["/usr/bin", "/bin", "/usr/local/bin"].contains(where: { directory in
            FileManager.default.isExecutableFile(atPath: "\(directory)/\(tool)")
        }) {
            return "building kvm-unit-tests needs \(tool), which is not installed"
        }
        return nil
    }()
    static var skipReason: String { unavailableReason ?? "" }
}
