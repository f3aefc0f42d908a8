// The exit path's cost against a bare C KVM_RUN loop, and `swiftvmm run`'s
// start-to-end time and peak RSS on the demo guest.
import CKVMBaseline
import Devices
import Firmware
import Foundation
import SwiftVMM
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

enum ExitLoopBenchmark {
    static let guest = FirmwareImage.realOutLoop

    /// One run of the OUT loop through swiftvmm; nanoseconds per exit.
    static func swiftvmmRound(_ iterations: UInt32) -> Double {
        do {
            let machine = try Machine(
                MachineConfiguration(guest: .firmware(guest), memorySize: 1 << 20, serialOutput: SerialBufferOutput()))
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
    static func baselineRound(_ iterations: UInt32) -> Double {
        var nanoseconds: UInt64 = 0
        let exits = guest.bytes.withUnsafeBufferPointer { code in
            ckvm_baseline_out_loop(code.baseAddress, code.count, iterations, &nanoseconds)
        }
        guard exits == Int(iterations) + 1 else { fail("C baseline: \(exits < 0 ? "errno \(-exits)" : "\(exits) exits")") }
        return Double(nanoseconds) / Double(exits)
    }

    /// Prints the exit-loop figures; returns the median ratio.
    @discardableResult
    static func run(iterations: UInt32, rounds: Int) -> Double {
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
        return median(ratios)
    }

    /// Process start to the demo guest's end, and peak RSS, for `swiftvmm run`.
    static func demoProcess(runs: Int) {
        let binary = binaryDirectory + "/swiftvmm"
        guard FileManager.default.isExecutableFile(atPath: binary) else { fail("\(binary) not found; build the swiftvmm product first") }
        var wallTimes: [Double] = []
        var peakRSS: [Double] = []
        let statsPath = NSTemporaryDirectory() + "swiftvmm-bench-stats-\(getpid())"
        defer { unlink(statsPath) }
        for _ in 0..<runs {
            guard let child = spawnAndWait([binary, "run", "--stats"], output: ChildOutput(stderr: statsPath)) else {
                fail("cannot start \(binary)")
            }
            guard child.status == 0 else { fail("swiftvmm run (demo) exited with wait status \(child.status)") }
            wallTimes.append(Double(child.nanoseconds) / 1e6)
            // ru_maxrss would include this (large) parent's pages, inherited across
            // posix_spawn's vfork; the child's own VmHWM, printed by --stats, does not.
            let stats = (try? String(contentsOfFile: statsPath, encoding: .utf8)) ?? ""
            guard let line = stats.split(separator: "\n").first(where: { $0.contains("peak RSS") }),
                let kib = line.split(separator: " ").reversed().dropFirst().first.flatMap({ Double($0) })
            else { fail("swiftvmm run --stats printed no peak RSS: \(stats)") }
            peakRSS.append(kib / 1024)
        }
        print("swiftvmm run (built-in demo guest, 128M RAM), \(runs) runs:")
        print("  process start to guest end: \(summary(wallTimes)) ms")
        print(String(format: "  peak RSS: median %.1f MiB (max %.1f)  (target <= 16 MiB)", median(peakRSS), peakRSS.max() ?? 0))
    }
}
