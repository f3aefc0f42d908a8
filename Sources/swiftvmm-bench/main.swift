// swiftvmm-bench: prints the figures behind swiftvmm's speed and memory targets.
//
//  1. The cost of a port-I/O exit through the whole swiftvmm path (guest OUT ->
//     KVM_RUN -> VMExit -> ExitDispatcher -> PortIOBus -> PostCodePort) against
//     a bare C KVM_RUN loop on the same guest in the same process, interleaved,
//     as a ratio of medians (target: at most 1.10).
//  2. The wall time from process start to the end of `swiftvmm run` on the
//     built-in demo guest, and that process's peak RSS (target: at most 16 MiB).
//
// Absolute times on a shared machine are noise; the ratio is the figure.
import CKVMBaseline
import Devices
import Firmware
import Foundation
import SwiftVMM
import VMCore

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
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("swiftvmm-bench: \(message)\n".utf8))
    exit(1)
}

var iterations: UInt32 = 20_000
var rounds = 7
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    switch flag {
    case "--iterations": iterations = arguments.popFirst().flatMap { UInt32($0) } ?? iterations
    case "--rounds": rounds = arguments.popFirst().flatMap { Int($0) } ?? rounds
    default: fail("usage: swiftvmm-bench [--iterations N] [--rounds N]")
    }
}

let guest = FirmwareImage.realOutLoop

/// One run of the OUT loop through swiftvmm; nanoseconds per exit.
func swiftvmmRound(_ iterations: UInt32) -> Double {
    do {
        let machine = try Machine(MachineConfiguration(guest: .firmware(guest), memorySize: 1 << 20, serialOutput: SerialBufferOutput()))
        var registers = try machine.registers()
        registers.rcx = UInt64(iterations)
        try machine.setRegisters(registers)
        let start = monotonicNanoseconds()
        let reason = try machine.run()
        let elapsed = monotonicNanoseconds() - start
        guard reason == .debugExit(status: 0), machine.postCodes.writeCount == Int(iterations) else {
            fail("swiftvmm path: unexpected end \(reason) after \(machine.postCodes.writeCount) OUTs")
        }
        return Double(elapsed) / Double(iterations + 1)
    } catch {
        fail("swiftvmm path: \(error)")
    }
}

/// One run of the same guest through the bare C loop; nanoseconds per exit.
func baselineRound(_ iterations: UInt32) -> Double {
    var nanoseconds: UInt64 = 0
    let exits = guest.bytes.withUnsafeBufferPointer { code in
        ckvm_baseline_out_loop(code.baseAddress, code.count, iterations, &nanoseconds)
    }
    guard exits == Int(iterations) + 1 else { fail("C baseline: \(exits < 0 ? "errno \(-exits)" : "\(exits) exits")") }
    return Double(nanoseconds) / Double(exits)
}

print("Port-I/O exit cost: \(iterations) OUTs per run, \(rounds) interleaved rounds")
_ = swiftvmmRound(iterations)  // warm-up: page in code and guest memory for both paths
_ = baselineRound(iterations)
var swiftTimes: [Double] = []
var cTimes: [Double] = []
var ratios: [Double] = []
for round in 1...rounds {
    let s = swiftvmmRound(iterations)
    let c = baselineRound(iterations)
    swiftTimes.append(s)
    cTimes.append(c)
    ratios.append(s / c)
    print(String(format: "  round %d: swiftvmm %8.0f ns/exit   C loop %8.0f ns/exit   ratio %.3f", round, s, c, s / c))
}
print(String(format: "  median:  swiftvmm %8.0f ns/exit   C loop %8.0f ns/exit", median(swiftTimes), median(cTimes)))
print(String(format: "  exit-loop ratio (median of per-round ratios): %.3f  (target <= 1.10)", median(ratios)))

// Process start to the demo guest's end, and peak RSS, for `swiftvmm run`.
let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("swiftvmm")
    .path
guard FileManager.default.isExecutableFile(atPath: binary) else { fail("\(binary) not found; build the swiftvmm product first") }
var wallTimes: [Double] = []
var peakRSS: [Double] = []
for _ in 0..<5 {
    var pid: pid_t = 0
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    let statsPath = "/tmp/swiftvmm-bench-stats-\(getpid())"
    posix_spawn_file_actions_addopen(&actions, 2, statsPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup(binary), strdup("run"), strdup("--stats"), nil]
    let start = monotonicNanoseconds()
    let spawned = posix_spawn(&pid, binary, &actions, nil, argv, environ)
    guard spawned == 0 else { fail("cannot start \(binary): errno \(spawned)") }
    var status: Int32 = 0
    var usage = rusage()
    wait4(pid, &status, 0, &usage)
    let elapsed = monotonicNanoseconds() - start
    argv.forEach { free($0) }
    posix_spawn_file_actions_destroy(&actions)
    guard status == 0 else { fail("swiftvmm run (demo) exited with wait status \(status)") }
    wallTimes.append(Double(elapsed) / 1e6)
    // ru_maxrss would include this (large) parent's pages, inherited across
    // posix_spawn's vfork; the child's own VmHWM, printed by --stats, does not.
    let stats = (try? String(contentsOfFile: statsPath, encoding: .utf8)) ?? ""
    unlink(statsPath)
    guard let line = stats.split(separator: "\n").first(where: { $0.contains("peak RSS") }),
        let kib = line.split(separator: " ").reversed().dropFirst().first.flatMap({ Double($0) })
    else { fail("swiftvmm run --stats printed no peak RSS: \(stats)") }
    peakRSS.append(kib / 1024)
}
print("swiftvmm run (built-in demo guest, 128M RAM), 5 runs:")
print(
    String(
        format: "  process start to guest end: median %.1f ms (min %.1f, max %.1f)", median(wallTimes), wallTimes.min() ?? 0,
        wallTimes.max() ?? 0))
print(String(format: "  peak RSS: median %.1f MiB (max %.1f)  (target <= 16 MiB)", median(peakRSS), peakRSS.max() ?? 0))
