#if canImport(Glibc)
    import Glibc
#endif

/// One fuzz target: a name for `SWIFTVMM_FUZZ_TARGET` and a function that
/// must return normally for every input. A crash, a Swift runtime trap, an
/// AddressSanitizer report or a leak is a finding.
struct FuzzTarget: Sendable {
    let name: String
    let run: @Sendable ([UInt8]) -> Void
}

/// The target this process runs, chosen once by `SWIFTVMM_FUZZ_TARGET`.
/// libFuzzer owns `main`, so an environment variable is the simplest way to
/// pick one function out of a single binary (scripts/fuzz.sh sets it).
let selectedTarget: FuzzTarget = {
    let name = getenv("SWIFTVMM_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    if let target = allTargets.first(where: { $0.name == name }) { return target }
    let names = allTargets.map(\.name).joined(separator: " ")
    let message = "SWIFTVMM_FUZZ_TARGET must name one of: \(names) (got '\(name)')\n"
    _ = message.withCString { write(2, $0, strlen($0)) }
    exit(2)
}()

/// libFuzzer's per-input callback: one input, copied so that the targets see an ordinary array.
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selectedTarget.run(bytes)
    return 0
}
