import Devices
import Firmware
import Foundation
import SwiftVMM
import Testing
import VMCore

/// `firmware/multiboot/dirty-memory.c`, the live-migration guest, against its
/// contract: the checksums it prints are those of the pattern, computed here
/// independently; it leaves the last pass's pattern in memory; `rate=` slows
/// it down; `idle` ticks; a working set that does not fit is refused.
@Suite(.serialized) struct DirtyMemoryGuestTests {
    static let workingSetBase: UInt64 = 0x100_0000

    struct Run {
        var reason: StopReason
        var output: String
        var machine: Machine
        var elapsed: Duration
    }

    func run(_ commandLine: String, memory: UInt64 = 32 << 20) throws -> Run {
        let output = SerialBufferOutput()
        let machine = try Machine(
            MachineConfiguration(
                guest: .multiboot(kernel: FirmwareImage.multibootDirtyMemory.bytes, name: "dirty.elf", commandLine: commandLine),
                memorySize: memory, serialOutput: output))
        let start = ContinuousClock.now
        let reason = try machine.run(timeout: .seconds(60))
        return Run(reason: reason, output: output.text, machine: machine, elapsed: ContinuousClock.now - start)
    }

    /// Word `i` of the working set after pass `p` (0 before pass 1).
    static func word(pass p: UInt64, index i: UInt64) -> UInt64 {
        p == 0 ? 0 : ((i &+ 1) &* 0x9e37_79b9_7f4a_7c15) ^ (p &* 0xd6e8_feb8_6659_fd93)
    }

    /// The guest's sum over a working set of `words` words holding pass `p`'s pattern.
    static func sum(pass p: UInt64, words: UInt64) -> UInt64 {
        var sum: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in 0..<words {
            let folded = (sum ^ word(pass: p, index: i)) &* 0x100_0000_01b3
            sum = folded >> 17 | folded << 47
        }
        return sum
    }

    static func hex16(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// The whole output of `ws=<kib>K iters=<passes>` (with `rate`), computed from the contract.
    static func expectedOutput(kib: UInt64, passes: UInt64, rate: UInt64 = 0) -> String {
        let words = kib * 1024 / 8
        var text = "dirty: ws \(kib) KiB at 0x01000000, rate \(rate) MiB/s, \(passes) passes\n"
        for p in 1...passes { text += "pass \(p) sum \(hex16(sum(pass: p - 1, words: words)))\n" }
        text += "dirty: done \(passes) passes, sum \(hex16(sum(pass: passes, words: words))), errors 0\n"
        return text
    }

    @Test func eachPassPrintsTheChecksumOfWhatThePassBeforeWrote() throws {
        let run = try run("/boot/dirty ws=1M iters=3 unknown=ignored")
        #expect(run.reason == .debugExit(status: 0x20), "\(run.output)")
        #expect(run.output == Self.expectedOutput(kib: 1024, passes: 3))
        // The last pass's pattern is in RAM, exactly over the working set.
        let words: UInt64 = (1 << 20) / 8
        for i: UInt64 in [0, 1, 511, 512, words / 2, words - 1] {
            let value = try run.machine.memory.readInteger(at: GuestAddress(Self.workingSetBase + i * 8), as: UInt64.self)
            #expect(value == Self.word(pass: 3, index: i), "word \(i)")
        }
        #expect(try run.machine.memory.readInteger(at: GuestAddress(Self.workingSetBase - 8), as: UInt64.self) == 0)
        #expect(try run.machine.memory.readInteger(at: GuestAddress(Self.workingSetBase + words * 8), as: UInt64.self) == 0)
    }

    @Test func aRateLimitPacesThePassesWithoutChangingTheOutput() throws {
        // 2 passes over 512 KiB at 4 MiB/s: 0.25 s at the least.
        let run = try run("ws=512K rate=4 iters=2")
        #expect(run.reason == .debugExit(status: 0x20), "\(run.output)")
        #expect(run.output == Self.expectedOutput(kib: 512, passes: 2, rate: 4))
        #expect(run.elapsed >= .milliseconds(200), "took \(run.elapsed): the TSC pacing did not hold it back")
    }

    @Test func idleModeHaltsOnTheTimerAndPrintsALinePerSixteenTicks() throws {
        let run = try run("idle iters=1")
        #expect(run.reason == .debugExit(status: 0x20), "\(run.output)")
        #expect(run.output == "dirty: idle, 16 ticks a line, 1 lines\nidle 1\ndirty: idle done\n")
        // 16 ticks of the PIT at 65536 counts: 0.88 s.
        #expect(run.elapsed >= .milliseconds(800), "took \(run.elapsed)")
    }

    @Test func aWorkingSetBeyondTheRAMIsRefused() throws {
        let run = try run("ws=32M", memory: 32 << 20)
        #expect(run.reason == .debugExit(status: 3))
        #expect(run.output == "dirty: working set does not fit the RAM at 16 MiB\n")
    }
}
