// swiftvmm-bench: prints the figures behind swiftvmm's speed and memory targets.
//
//  1. The cost of a port-I/O exit through the whole swiftvmm path (guest OUT ->
//     KVM_RUN -> VMExit -> ExitDispatcher -> PortIOBus -> PostCodePort) against
//     a bare C KVM_RUN loop on the same guest in the same process, interleaved,
//     as a ratio of medians (target: at most 1.10) (ExitLoop.swift).
//  2. The wall time from process start to the end of `swiftvmm run` on the
//     built-in demo guest, and that process's peak RSS (target: at most 16 MiB).
//  3. The lifecycle (Lifecycle.swift): `snapshot(to:)` of a 4 GiB guest that
//     touched 10 MiB and its memory file's size on disk; restore latency to
//     the guest's first exit for 128 MiB and 4 GiB snapshots, in process and
//     as `swiftvmm restore DIR` (fork to exit; target <= 10 ms, 4 GiB within
//     1.5x of 128 MiB); the same for QEMU restoring a 128 MiB migration file
//     (QEMU.swift; SKIPPED without qemu-system-x86_64); `reset(to:)` of a
//     fixture that dirtied 100 pages (target <= 1 ms), clone-per-test against
//     reset-per-test.
//  4. A VMMTesting test on a firmware guest, TestVM(...) to the end (TestVMBenchmark.swift).
//
//  5. virtio-blk from a guest's own driver (Virtio.swift): sequential and
//     random throughput against the host's dd on the same file, and VM exits
//     per request (target: well below 1).
//
//  6. virtio-net's host side (VirtioNetBenchmark.swift): frames per second
//     through the transport, queues and device to and from a socket pair.
//
//  6b. virtio-net from a guest's own driver over a tap in a network namespace
//     (VirtioNetGuestBenchmark.swift): frames/s and MB/s each way, VM exits per frame.
//
//  7. The Firecracker-compatible API (API.swift): process start to the API
//     socket accepting (wall and CPU ms; Firecracker's target: 8 CPU ms),
//     InstanceStart to the guest's first COM1 byte, peak RSS with and without
//     the API (target: the API adds at most 4 MiB), GET / requests per second
//     from 1 and 16 clients.
//
// Absolute times on a shared machine are noise; the ratios, measured in one
// run, are the figures.
import Foundation

var iterations: UInt32 = 20_000
var rounds = 7
var restores = 15
var tests = 50
var only: Set<String> = []
let parts = [
    "exit-loop", "demo", "snapshot", "restore", "qemu", "fixture", "testvm", "virtio", "virtio-net", "api", "seccomp", "virtio-net-guest",
]
var arguments = CommandLine.arguments.dropFirst()
let usage =
    "usage: swiftvmm-bench [--iterations N] [--rounds N] [--restores N] [--tests N] [--only PART[,PART...]]\n"
    + "  PART: \(parts.joined(separator: ", ")) (qemu needs restore's snapshots and is measured with it)"
while let flag = arguments.popFirst() {
    switch flag {
    case "--iterations": iterations = arguments.popFirst().flatMap { UInt32($0) } ?? iterations
    case "--rounds": rounds = arguments.popFirst().flatMap { Int($0) } ?? rounds
    case "--restores": restores = arguments.popFirst().flatMap { Int($0) } ?? restores
    case "--tests": tests = arguments.popFirst().flatMap { Int($0) } ?? tests
    case "--only":
        only = Set((arguments.popFirst() ?? "").split(separator: ",").map(String.init))
        guard only.isSubset(of: parts) else { fail(usage) }
    default: fail(usage)
    }
}
guard iterations > 0, rounds > 0, restores > 0, tests > 0 else { fail(usage) }
let selected = only
func wanted(_ part: String) -> Bool {
    selected.isEmpty || selected.contains(part) || (part == "restore" && selected.contains("qemu"))
}

if wanted("exit-loop") { ExitLoopBenchmark.run(iterations: iterations, rounds: rounds) }
if wanted("demo") { ExitLoopBenchmark.demoProcess(runs: 5) }
if wanted("virtio") { VirtioBenchmark.run() }
if wanted("api") { APIBenchmark.run(rounds: rounds * 3) }
if wanted("seccomp") {
    let floodMiB = UInt32(ProcessInfo.processInfo.environment["SWIFTVMM_FLOOD_MIB"] ?? "") ?? 16
    SeccompBenchmark.run(rounds: rounds, exits: 100_000, floodMiB: floodMiB)
}

/// 10 MiB of 4 KiB pages: what the snapshot and restore guests touch.
let touchedPages = 2560
if wanted("snapshot") || wanted("restore") {
    let small = LifecycleBenchmark.save(label: "128M", memory: 128 << 20, pages: touchedPages, rounds: rounds)
    let large = LifecycleBenchmark.save(label: "4G", memory: 4 << 30, pages: touchedPages, rounds: rounds)
    defer { for saved in [small, large] { try? FileManager.default.removeItem(atPath: saved.directory) } }
    if wanted("snapshot") {
        LifecycleBenchmark.printSnapshot(large)
        LifecycleBenchmark.printSnapshot(small)
    }
    if wanted("restore") {
        print(
            "Restore to the guest's first exit after resume (1 vCPU, 10 MiB touched, saved just before its debug-exit write), \(restores) rounds:"
        )
        let inProcess = [small, large].map { LifecycleBenchmark.restoreInProcess($0, rounds: restores) }
        for (saved, times) in zip([small, large], inProcess) {
            print(
                "  in process, \(LifecycleBenchmark.describe(saved.memorySize)): Machine.restore \(summary(times.restore, "%.2f")) ms; "
                    + "+ first exit \(summary(times.firstExit, "%.2f")) ms")
        }
        print(String(format: "  in process, 4 GiB / 128 MiB: %.2f", median(inProcess[1].firstExit) / median(inProcess[0].firstExit)))
        let processes = [small, large].map { LifecycleBenchmark.restoreProcess($0, rounds: restores) }
        var smallProcess: Double?
        switch (processes[0], processes[1]) {
        case (.success(let smallTimes), .success(let largeTimes)):
            print("  swiftvmm restore DIR, 128 MiB, fork to exit: \(summary(smallTimes, "%.2f")) ms  (target <= 10 ms)")
            print("  swiftvmm restore DIR, 4 GiB, fork to exit:   \(summary(largeTimes, "%.2f")) ms  (target <= 10 ms)")
            print(String(format: "  swiftvmm restore, 4 GiB / 128 MiB: %.2f  (target <= 1.5)", median(largeTimes) / median(smallTimes)))
            smallProcess = median(smallTimes)
            if let floor = LifecycleBenchmark.processFloor(rounds: restores) {
                print("  for scale, swiftvmm --help, fork to exit:     \(summary(floor, "%.2f")) ms")
            }
        case (.failure(let reason), _), (_, .failure(let reason)):
            print("  swiftvmm restore DIR (process level): SKIPPED: \(reason)")
        }
        if wanted("qemu") {
            print("QEMU 7.2 restoring a 128 MiB guest (-M pc, multiboot/resume-probe, 10 MiB touched) from a migration file:")
            if smallProcess == nil {
                print("  SKIPPED: no process-level swiftvmm figure to compare with")
            } else {
                switch QEMUBenchmark.run(rounds: restores, interleaved: { LifecycleBenchmark.restoreOnce(small) }) {
                case .success(let times):
                    print("  qemu-system-x86_64 -incoming \"exec:cat FILE\", fork to the guest's exit: \(summary(times.qemu, "%.1f")) ms")
                    print("  swiftvmm restore DIR (128 MiB), interleaved with it:      \(summary(times.other, "%.2f")) ms")
                    let ratios = zip(times.other, times.qemu).map { $0 / $1 }
                    print(String(format: "  swiftvmm restore / QEMU -incoming (median of per-round ratios): %.3f", median(ratios)))
                case .failure(let reason): print("  SKIPPED: \(reason)")
                }
            }
        }
    }
}
if wanted("fixture") { LifecycleBenchmark.fixtures(pages: 100, tests: tests) }
if wanted("testvm") { TestVMBenchmark.run(tests: 100) }
if wanted("virtio-net") { VirtioNetBenchmark.run(frames: 200_000, rounds: rounds) }
if wanted("virtio-net-guest") { VirtioNetGuestBenchmark.run(frames: 100_000, receiveSeconds: 2) }
