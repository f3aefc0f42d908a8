import Devices
import Firmware
import Foundation
import Testing

@testable import SwiftVMM

/// A restored guest's clocks go on from where they stood when it was saved,
/// however long the snapshot waited: kvmclock always, and the TSC where the
/// host lets KVM offset it. Where it does not (this project's PVM host: the
/// guest's `rdtsc` reads the host's TSC, and KVM ignores a host-initiated
/// write of `IA32_TSC`), the machine must not call the TSC invariant, or
/// Linux keeps its time by the TSC rather than kvmclock and, restored,
/// catches up on every timer tick it missed (minutes of emulated ring-0
/// code here). Putting the wall clock right is the guest agent's job.
@Suite(.serialized) struct SnapshotClockTests {
    /// One clock line of `longmode/clock-reader.S`.
    struct Reading: CustomStringConvertible {
        var tsc: UInt64
        var kvmclock: UInt64
        var description: String { "tsc \(tsc) kvmclock \(kvmclock) ns" }

        /// The readings in `text`: complete "tsc T kvmclock K" lines, in hex.
        static func all(in text: String) -> [Reading] {
            text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().compactMap { line -> Reading? in
                let words = line.split(separator: " ")
                guard words.count == 4, words[0] == "tsc", words[2] == "kvmclock", let tsc = UInt64(words[1], radix: 16),
                    let kvmclock = UInt64(words[3], radix: 16)
                else { return nil }
                return Reading(tsc: tsc, kvmclock: kvmclock)
            }
        }
    }

    /// How long the snapshot waits on disk, and how much of it the guest may see.
    static let away: TimeInterval = 2
    static let allowedNanoseconds: UInt64 = 500_000_000

    @Test func aRestoredGuestsClocksGoOnFromWhereTheSnapshotStopped() throws {
        let before = SerialBufferOutput()
        let machine = try Machine(MachineConfiguration(guest: .firmware(.longClockReader), memorySize: 16 << 20, serialOutput: before))
        // Up to the end of the first clock line: the guest has read its clocks once.
        try machine.withDeadline(.seconds(30)) { () throws in
            while Reading.all(in: before.text).isEmpty {
                if let reason = try machine.dispatch(try machine.nextExit()) {
                    Issue.record("the guest stopped (\(reason)) before its first reading: \(before.text.debugDescription)")
                    return
                }
            }
        }
        let directory = try SnapshotTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try machine.snapshot(to: directory)
        let kHz = try #require(try Machine.readSnapshotState(from: directory).vcpus[0].tscKHz, "KVM_GET_TSC_KHZ gave no frequency")

        Thread.sleep(forTimeInterval: Self.away)
        let after = SerialBufferOutput()
        let restored = try Machine.restore(from: directory, io: MachineIO(serialOutput: after))
        #expect(try restored.run(timeout: .seconds(30)) == .debugExit(status: 0))

        let text = before.text + after.text
        let readings = Reading.all(in: text)
        try #require(readings.count == 2 && text.hasPrefix("invtsc "), "\(text.debugDescription)")
        let invariantTSC = text.hasPrefix("invtsc 1\n")
        let (first, second) = (readings[0], readings[1])
        #expect(second.tsc > first.tsc && second.kvmclock > first.kvmclock, "\(first) then \(second)")
        let kvmclockNanoseconds = second.kvmclock &- first.kvmclock
        #expect(
            kvmclockNanoseconds < Self.allowedNanoseconds,
            "kvmclock moved \(kvmclockNanoseconds / 1_000_000) ms across a snapshot that waited \(Self.away) s: \(first) then \(second)")
        let tscMilliseconds = (second.tsc &- first.tsc) / UInt64(kHz)
        if tscMilliseconds * 1_000_000 >= Self.allowedNanoseconds {
            #expect(
                !invariantTSC,
                """
                the host did not hold the TSC (it moved \(tscMilliseconds) ms at \(kHz) kHz across a snapshot that \
                waited \(Self.away) s), yet the guest is told its TSC is invariant: \(first) then \(second)
                """)
        }
    }
}
