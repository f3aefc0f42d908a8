// The VM lifecycle's figures: snapshot to disk, restore (in process and as
// `swiftvmm restore`), and clone or reset a test fixture, with the
// `longmode/touch-pages` guest, which dirties the pages it is told to and
// stops at a POST code just before its debug-exit write.
import Devices
import Firmware
import Foundation
import SwiftVMM
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

enum LifecycleBenchmark {
    /// Where the guest starts touching pages.
    static let firstPage: UInt64 = 0x20_0000

    /// A snapshot on disk and what making it cost.
    struct SavedGuest {
        var label: String
        var directory: String
        var memorySize: UInt64
        var pagesTouched: Int
        /// Milliseconds per `snapshot(to:)`.
        var snapshotTimes: [Double]
        var statistics: SnapshotStatistics
        /// The memory file's st_size.
        var apparentBytes: UInt64
    }

    /// The touch-pages guest with `memory` bytes of RAM, told to dirty `pages` pages.
    static func touchingMachine(memory: UInt64, pages: Int) throws -> Machine {
        let machine = try Machine(
            MachineConfiguration(guest: .firmware(.longTouchPages), memorySize: memory, serialOutput: SerialBufferOutput()))
        var registers = try machine.registers()
        registers.rdi = firstPage
        registers.rcx = UInt64(pages)
        try machine.setRegisters(registers)
        return machine
    }

    /// Runs `machine` exit by exit until the guest has written `count` POST
    /// codes: 1 is before it touches its pages, 2 after, right before its exit.
    static func advance(_ machine: Machine, toPostCode count: Int) throws {
        while machine.postCodes.writeCount < count {
            if let reason = try machine.dispatch(try machine.nextExit()) { fail("touch-pages guest ended early: \(reason)") }
        }
    }

    // MARK: Snapshot

    /// Boots the guest, lets it dirty `pages` pages, and saves it `rounds`
    /// times to a fresh directory (the last one stays).
    static func save(label: String, memory: UInt64, pages: Int, rounds: Int) -> SavedGuest {
        let directory = scratchDirectory(label)
        do {
            let machine = try touchingMachine(memory: memory, pages: pages)
            try advance(machine, toPostCode: 2)
            var times: [Double] = []
            var statistics: SnapshotStatistics?
            for _ in 0..<max(rounds, 1) {
                let start = monotonicNanoseconds()
                statistics = try machine.snapshot(to: directory)
                times.append(Double(monotonicNanoseconds() - start) / 1e6)
            }
            var info = stat()
            guard let statistics, stat(directory + "/" + SnapshotLayout.memoryFileName, &info) == 0 else {
                fail("no memory file in \(directory)")
            }
            return SavedGuest(
                label: label, directory: directory, memorySize: memory, pagesTouched: pages, snapshotTimes: times,
                statistics: statistics, apparentBytes: UInt64(info.st_size))
        } catch { fail("saving the \(label) guest: \(error)") }
    }

    static func printSnapshot(_ saved: SavedGuest) {
        let mib = { (bytes: UInt64) in Double(bytes) / Double(1 << 20) }
        print(
            "Snapshot of a \(describe(saved.memorySize)) guest that touched \(saved.pagesTouched) pages (\(saved.pagesTouched * 4) KiB), \(saved.snapshotTimes.count) rounds:"
        )
        print("  snapshot(to:): \(summary(saved.snapshotTimes, "%.2f")) ms")
        print(
            String(
                format:
                    "  memory file: %.2f MiB on disk (st_blocks*512) vs %.0f MiB apparent (st_size); %llu pages written; state file %llu bytes",
                mib(saved.statistics.memoryFileAllocatedBytes), mib(saved.apparentBytes), saved.statistics.pagesWritten,
                saved.statistics.stateFileBytes))
    }

    static func describe(_ bytes: UInt64) -> String { bytes >= 1 << 30 ? "\(bytes >> 30) GiB" : "\(bytes >> 20) MiB" }

    // MARK: Restore

    /// `Machine.restore(from:)`, then `nextExit()` up to the guest's first exit
    /// (its debug-exit write): milliseconds for the restore alone and for both.
    static func restoreInProcess(_ saved: SavedGuest, rounds: Int) -> (restore: [Double], firstExit: [Double]) {
        var restoreTimes: [Double] = []
        var totalTimes: [Double] = []
        for _ in 0..<rounds {
            do {
                let start = monotonicNanoseconds()
                let machine = try Machine.restore(from: saved.directory, io: MachineIO(serialOutput: SerialBufferOutput()))
                let restored = monotonicNanoseconds()
                let exit = try machine.nextExit()
                let end = monotonicNanoseconds()
                let reason = try machine.dispatch(exit)
                guard reason == .debugExit(status: 0) else {
                    fail("restored \(saved.label) guest: first exit ended \(String(describing: reason))")
                }
                restoreTimes.append(Double(restored - start) / 1e6)
                totalTimes.append(Double(end - start) / 1e6)
            } catch { fail("restoring \(saved.label): \(error)") }
        }
        return (restoreTimes, totalTimes)
    }

    /// `swiftvmm restore DIR`, fork to exit, `rounds` times: milliseconds, or
    /// why it could not be measured.
    static func restoreProcess(_ saved: SavedGuest, rounds: Int) -> Result<[Double], SkipReason> {
        let binary = binaryDirectory + "/swiftvmm"
        guard FileManager.default.isExecutableFile(atPath: binary) else { return .failure(SkipReason("\(binary) not found")) }
        let errors = NSTemporaryDirectory() + "swiftvmm-bench-restore-\(getpid()).err"
        defer { unlink(errors) }
        var times: [Double] = []
        // One unmeasured run first: page in the binary and its libraries.
        for round in 0...rounds {
            guard let child = spawnAndWait([binary, "restore", saved.directory], output: ChildOutput(stderr: errors)) else {
                return .failure(SkipReason("cannot start \(binary)"))
            }
            guard exitStatus(child.status) == 0 else {
                let said = ((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "").split(separator: "\n").first ?? ""
                return .failure(SkipReason("`swiftvmm restore` ended with wait status \(child.status): \(said)"))
            }
            if round > 0 { times.append(Double(child.nanoseconds) / 1e6) }
        }
        return .success(times)
    }

    /// One `swiftvmm restore DIR`, fork to exit, in milliseconds; `nil` if it failed.
    static func restoreOnce(_ saved: SavedGuest) -> Double? {
        guard let child = spawnAndWait([binaryDirectory + "/swiftvmm", "restore", saved.directory]), exitStatus(child.status) == 0
        else { return nil }
        return Double(child.nanoseconds) / 1e6
    }

    /// `swiftvmm --help`, fork to exit: the floor under any `swiftvmm`
    /// process (dynamic loading, the Swift runtime, argument parsing).
    static func processFloor(rounds: Int) -> [Double]? {
        let binary = binaryDirectory + "/swiftvmm"
        var times: [Double] = []
        for round in 0...rounds {
            guard let child = spawnAndWait([binary, "--help"]), exitStatus(child.status) == 0 else { return nil }
            if round > 0 { times.append(Double(child.nanoseconds) / 1e6) }
        }
        return times
    }

    // MARK: Fixtures

    /// A 128 MiB machine imaged before it touches `pages` pages; each "test"
    /// runs it to its end. Clone per test against one clone reset per test.
    static func fixtures(pages: Int, tests: Int) {
        do {
            let base = try touchingMachine(memory: 128 << 20, pages: pages)
            try advance(base, toPostCode: 1)
            let image = try base.makeImage()
            let io = { MachineIO(serialOutput: SerialBufferOutput()) }

            var cloneTimes: [Double] = []
            var clonePerTest: [Double] = []
            for _ in 0..<tests {
                let start = monotonicNanoseconds()
                var cloned: UInt64 = 0
                do {
                    let clone = try Machine.clone(image, io: io())
                    cloned = monotonicNanoseconds()
                    guard try clone.run() == .debugExit(status: 0) else { fail("a clone's test did not end with debugExit(0)") }
                }
                let end = monotonicNanoseconds()
                cloneTimes.append(Double(cloned - start) / 1e3)
                clonePerTest.append(Double(end - start) / 1e3)
            }

            let clone = try Machine.clone(image, io: io())
            var resetTimes: [Double] = []
            var resetPerTest: [Double] = []
            var restored: [Double] = []
            for _ in 0..<tests {
                let start = monotonicNanoseconds()
                guard try clone.run() == .debugExit(status: 0) else { fail("a reset clone's test did not end with debugExit(0)") }
                let ran = monotonicNanoseconds()
                let statistics = try clone.reset(to: image)
                let end = monotonicNanoseconds()
                guard statistics.pagesRestored >= pages else {
                    fail("reset put back \(statistics.pagesRestored) pages, fewer than \(pages)")
                }
                restored.append(Double(statistics.pagesRestored))
                resetTimes.append(Double(end - ran) / 1e3)
                resetPerTest.append(Double(end - start) / 1e3)
            }
            print("Fixture: 128 MiB guest imaged before it dirties \(pages) pages; \(tests) tests each way:")
            print(
                "  reset(to:) after a test: \(summary(resetTimes, "%.0f")) µs, \(Int(median(restored))) pages put back  (target <= 1000 µs)"
            )
            print("  Machine.clone: \(summary(cloneTimes, "%.0f")) µs")
            print("  per test, clone + run + drop: \(summary(clonePerTest, "%.0f")) µs")
            print("  per test, run + reset:        \(summary(resetPerTest, "%.0f")) µs")
            print(String(format: "  clone-per-test / reset-per-test: %.2f", median(clonePerTest) / median(resetPerTest)))
        } catch { fail("fixtures: \(error)") }
    }
}

/// Why a figure was not measured.
struct SkipReason: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
