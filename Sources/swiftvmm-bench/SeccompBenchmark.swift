// The seccomp filters' cost: the exit path of `swiftvmm run` with
// `--seccomp enforce` against `--seccomp off` (every exit makes an ioctl,
// and with filters on each system call runs the process and vCPU filters),
// the time installing them adds at start-up, and a serial flood of 1 GiB.
import Foundation
import HostSupport
import Sandbox
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

enum SeccompBenchmark {
    /// A real-mode guest: `out 0x80, al` `count` times, then exit 0 through port 0xf4.
    static func outLoopGuest(count: UInt32) -> [UInt8] {
        [0x66, 0xB9] + withUnsafeBytes(of: count.littleEndian, Array.init)  // mov ecx, count
            + [0xE6, 0x80, 0x66, 0x49, 0x75, 0xFA]  // loop: out 0x80, al; dec ecx; jnz loop
            + [0xB0, 0x00, 0xE6, 0xF4, 0xF4]  // mov al, 0; out 0xf4, al; hlt
    }

    /// The guest's run time in milliseconds as `--stats` reports it.
    static func guestMilliseconds(_ binary: String, _ arguments: [String], statsPath: String) -> Double {
        guard let child = spawnAndWait([binary, "run", "--stats"] + arguments, output: ChildOutput(stderr: statsPath)),
            child.status == 0
        else { fail("swiftvmm run \(arguments.joined(separator: " ")) failed; see \(statsPath)") }
        let stats = (try? String(contentsOfFile: statsPath, encoding: .utf8)) ?? ""
        guard let range = stats.range(of: "guest ran "), let value = Double(stats[range.upperBound...].prefix { $0 != " " }) else {
            fail("no guest time in \(stats)")
        }
        return value
    }

    static func run(rounds: Int, exits: UInt32, floodMiB: UInt32) {
        let binary = binaryDirectory + "/swiftvmm"
        guard FileManager.default.isExecutableFile(atPath: binary) else { fail("\(binary) not found; build the swiftvmm product first") }
        let directory = scratchDirectory("seccomp")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let guest = directory + "/outloop.bin"
        _ = FileManager.default.createFile(atPath: guest, contents: Data(outLoopGuest(count: exits)))
        print("seccomp filters on the exit path: \(exits) port-I/O exits per run, \(rounds) interleaved rounds (swiftvmm run)")
        var on: [Double] = []
        var off: [Double] = []
        var ratios: [Double] = []
        for _ in 1...rounds {
            let o = guestMilliseconds(binary, ["--seccomp", "off", guest], statsPath: directory + "/stats")
            let e = guestMilliseconds(binary, ["--seccomp", "enforce", guest], statsPath: directory + "/stats")
            off.append(o * 1e6 / Double(exits))
            on.append(e * 1e6 / Double(exits))
            ratios.append(e / o)
        }
        print("  --seccomp off:     ns per exit \(summary(off))")
        print("  --seccomp enforce: ns per exit \(summary(on))")
        print("  enforce / off: median \(String(format: "%.3f", median(ratios))) (target: within 2 %)")

        // Start-up: compiling every kind's filter and installing the process filter, in this process.
        var compile: [Double] = []
        for _ in 1...rounds {
            let start = monotonicNanoseconds()
            for kind in ThreadKind.allCases {
                _ = try? FilterProgram(kind: kind, rules: SandboxPolicy.rules(for: kind), mode: .enforce)
            }
            compile.append(Double(monotonicNanoseconds() - start) / 1e3)
        }
        print("  compiling the \(ThreadKind.allCases.count) filters: us \(summary(compile))")

        // Start-up: the demo guest's whole `swiftvmm run` (it ends in a few exits), off against enforce.
        var startOff: [Double] = []
        var startOn: [Double] = []
        for _ in 1...rounds {
            for enforce in [false, true] {
                let mode = enforce ? "enforce" : "off"
                guard let child = spawnAndWait([binary, "run", "--seccomp", mode], output: ChildOutput(stderr: directory + "/stats")),
                    child.status == 0
                else { fail("swiftvmm run --seccomp \(mode) failed; see \(directory)/stats") }
                let milliseconds = Double(child.nanoseconds) / 1e6
                if enforce { startOn.append(milliseconds) } else { startOff.append(milliseconds) }
            }
        }
        print("  the demo's whole run, --seccomp off:     ms \(summary(startOff))")
        print("  the demo's whole run, --seccomp enforce: ms \(summary(startOn))")

        if floodMiB > 0 {
            let flood = directory + "/flood.bin"
            // The flood guest of SandboxCLITests: 4 KiB per rep outsb to COM2.
            let blocks = withUnsafeBytes(of: (floodMiB * 256).littleEndian, Array.init)
            let code: [UInt8] =
                [0xBA, 0xF8, 0x02, 0x66, 0xBD] + blocks + [0xFC, 0xBE, 0x00, 0x80, 0xB9, 0x00, 0x10, 0xF3, 0x6E, 0x66, 0x4D, 0x75, 0xF4]
                + [0xB0, 0x00, 0xE6, 0xF4, 0xF4]
            _ = FileManager.default.createFile(atPath: flood, contents: Data(code))
            let output = directory + "/com2.log"
            guard
                let child = spawnAndWait(
                    [binary, "run", "--stats", "--serial2", "file:\(output)", flood], output: ChildOutput(stderr: directory + "/stats"))
            else { fail("cannot start \(binary)") }
            let stats = (try? String(contentsOfFile: directory + "/stats", encoding: .utf8)) ?? ""
            let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? -1
            print(
                "  serial flood of \(floodMiB) MiB to a file (default limit 1 MiB/s, 8 MiB burst): \(String(format: "%.1f", Double(child.nanoseconds) / 1e9)) s, file \(size >> 20) MiB, \(stats.split(separator: "\n").last { $0.contains("stats:") } ?? "")"
            )
        }
        systemCallCost(calls: 1_000_000, rounds: rounds)
    }

    /// What the filters add to one system call on the exit path: `ioctl(KVM_RUN)`
    /// (on a pipe, which refuses it at once) `calls` times on a thread without
    /// filters, then on a thread under the vCPU and process filters, as a vCPU
    /// thread runs. Last: it turns the sandbox on in this process.
    static func systemCallCost(calls: Int, rounds: Int) {
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { fail("pipe: errno \(errno)") }
        let fd = pipeFDs[0]
        let kvmRun: UInt = 0xAE80
        let result = Mutex([Double]())
        func measure(threadName: String, filtered: Bool) -> Double {
            result.withLock { $0 = [] }
            guard
                let thread = try? HostThread.spawn(
                    name: threadName,
                    {
                        if filtered { Sandbox.enterThread(.process, name: threadName) }
                        for _ in 1...rounds {
                            let start = monotonicNanoseconds()
                            for _ in 0..<calls { _ = ioctl(fd, kvmRun, 0) }
                            let perCall = Double(monotonicNanoseconds() - start) / Double(calls)
                            result.withLock { $0.append(perCall) }
                        }
                    })
            else { fail("cannot start a thread") }
            thread.join()
            return median(result.withLock { $0 })
        }
        let plain = measure(threadName: "bench plain", filtered: false)
        do { try Sandbox.enable(mode: .enforce) } catch { fail("\(error)") }
        // "vcpu 99": the start hook installs the vCPU filter; the thread adds the process filter.
        let filtered = measure(threadName: "vcpu 99", filtered: true)
        print(
            "  one ioctl(KVM_RUN) refused by a pipe, \(calls) calls x \(rounds): \(String(format: "%.0f", plain)) ns without filters, "
                + "\(String(format: "%.0f", filtered)) ns under the vCPU and process filters (+\(String(format: "%.0f", filtered - plain)) ns per call)"
        )
        close(pipeFDs[0])
        close(pipeFDs[1])
    }
}
