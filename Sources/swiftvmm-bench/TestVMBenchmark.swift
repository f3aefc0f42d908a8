// What a VMMTesting user pays per test: a whole test that boots a firmware
// guest and asserts its output, from `TestVM(...)` to the end (the VM dropped).
import VMMTesting

enum TestVMBenchmark {
    /// Times `tests` runs of the README's first example on `realmode/hello`:
    /// make the VM, run until "Hello", run to the debug-exit write, compare
    /// the whole output. Prints the median and range, and how many failed.
    static func run(tests: Int) {
        var times: [Double] = []
        var failures = 0
        for _ in 0..<tests {
            let start = monotonicNanoseconds()
            var passed = false
            do {
                let vm = try TestVM(FirmwareImage.realHello)
                try vm.run(untilOutputContains: "Hello", timeout: .seconds(10))
                passed = try vm.runToCompletion() == .debugExit(status: 0) && vm.serialText == "Hello from real mode!\n"
            } catch {
                print("  test failed: \(error)")
            }
            times.append(Double(monotonicNanoseconds() - start) / 1e6)
            if !passed { failures += 1 }
        }
        print(
            "A VMMTesting test (TestVM(FirmwareImage.realHello), run until \"Hello\", runToCompletion, check the output), \(tests) tests:")
        print("  per test, TestVM(...) to the end, VM dropped: \(summary(times, "%.2f")) ms")
        if failures > 0 { print("  FAILED: \(failures) of \(tests) tests") }
    }
}
