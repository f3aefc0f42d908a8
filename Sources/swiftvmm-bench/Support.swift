// Helpers shared by the benchmark's parts: clocks, medians, child processes.
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

func monotonicNanoseconds() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// "median M (min A, max B)" of `values`, printed with `format`.
func summary(_ values: [Double], _ format: String = "%.1f") -> String {
    String(
        format: "median \(format) (min \(format), max \(format))", median(values), values.min() ?? .nan, values.max() ?? .nan)
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("swiftvmm-bench: \(message)\n".utf8))
    exit(1)
}

/// A fresh directory for the benchmark's files, removed by the caller.
func scratchDirectory(_ name: String) -> String {
    let path = NSTemporaryDirectory() + "swiftvmm-bench-\(getpid())-" + name
    try? FileManager.default.removeItem(atPath: path)
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
        fail("cannot create \(path): \(error)")
    }
    return path
}

/// Where a child's stdout and stderr go.
struct ChildOutput {
    var stdout = "/dev/null"
    var stderr = "/dev/null"
}

/// Starts `argv` (argv[0] is the executable's path) and waits for it: the
/// wall time from just before `posix_spawn` to the end of `wait4`, in
/// nanoseconds, and its wait status. `nil` if it could not be started.
func spawnAndWait(_ argv: [String], output: ChildOutput = ChildOutput()) -> (nanoseconds: UInt64, status: Int32)? {
    var pid: pid_t = 0
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output.stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, output.stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    let cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    defer { cArguments.forEach { free($0) } }
    let start = monotonicNanoseconds()
    guard posix_spawn(&pid, argv[0], &actions, nil, cArguments, environ) == 0 else { return nil }
    var status: Int32 = 0
    var usage = rusage()
    wait4(pid, &status, 0, &usage)
    return (monotonicNanoseconds() - start, status)
}

/// The exit status in a wait status, or `nil` if the child was killed by a signal.
func exitStatus(_ status: Int32) -> Int32? { status & 0x7f == 0 ? (status >> 8) & 0xff : nil }

/// The first executable `name` on PATH.
func executableOnPath(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// The directory this executable is in (where `swift build` puts `swiftvmm` too).
let binaryDirectory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().path
