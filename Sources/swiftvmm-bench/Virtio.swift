import Devices
import Firmware
import Foundation
import SwiftVMM

/// virtio-blk as a guest's own driver sees it (`firmware/multiboot/virtio-blk-bench.c`):
/// sequential write and read throughput and 4 KiB random-read IOPS on a
/// 256 MiB image, VM exits per request, against the host writing and reading
/// the same file with `dd`.
enum VirtioBenchmark {
    /// Each COM1 line with the time and the machine's exit count when it ended.
    final class TimedLines: SerialOutput, @unchecked Sendable {
        var lines: [(text: String, nanoseconds: UInt64, exits: Int)] = []
        var current: [UInt8] = []
        weak var machine: Machine?

        func write(_ byte: UInt8) {
            guard byte == 0x0a else {
                current.append(byte)
                return
            }
            lines.append((String(decoding: current, as: UTF8.self), monotonicNanoseconds(), machine?.exitCount ?? 0))
            current = []
        }

        func flush() {}
    }

    static let imageSize = 256 << 20

    static func run() {
        let directory = scratchDirectory("virtio-bench")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let image = directory + "/disk.img"
        guard FileManager.default.createFile(atPath: image, contents: nil), truncate(image, off_t(imageSize)) == 0 else {
            fail("virtio-blk benchmark: cannot create \(image)")
        }
        print("virtio-blk from the guest's own driver (depth 16, 64 KiB sequential requests, 4 KiB random reads), 256 MiB image:")
        let output = TimedLines()
        var configuration = MachineConfiguration(
            guest: .firmware(FirmwareImage.multibootVirtioBlkBench), memorySize: 64 << 20, serialOutput: output)
        configuration.virtioDevices = [.block(.init(path: image))]
        let machine: Machine
        do {
            machine = try Machine(configuration)
        } catch { fail("virtio-blk benchmark: \(error)") }
        output.machine = machine
        let start = monotonicNanoseconds()
        do {
            let reason = try machine.run(timeout: .seconds(600))
            guard reason == .debugExit(status: 0) else {
                fail("virtio-blk benchmark: the guest stopped with \(reason): \(output.lines.map(\.text).joined(separator: "\n"))")
            }
        } catch { fail("virtio-blk benchmark: \(error)") }
        let guestSeconds = Double(monotonicNanoseconds() - start) / 1e9
        var figures: [String: (bytes: Double, requests: Double, seconds: Double, exits: Int)] = [:]
        for phase in ["seqwrite", "seqread", "randread"] {
            guard let begin = output.lines.first(where: { $0.text == "bench: \(phase) start" }),
                let end = output.lines.first(where: { $0.text.hasPrefix("bench: \(phase) ") && $0.text.contains(" requests ") })
            else { fail("virtio-blk benchmark: no \(phase) result in \(output.lines.map(\.text))") }
            let words = end.text.split(separator: " ")
            // "bench: PHASE R requests Y bytes C Kcycles": each number comes before its word.
            let requests = words.firstIndex(of: "requests").flatMap { Double(words[$0 - 1]) } ?? 0
            let bytes = words.firstIndex(of: "bytes").flatMap { Double(words[$0 - 1]) } ?? 0
            // The result line itself is COM1 output: its exits are not the requests'.
            let lineExits = end.text.utf8.count + 1
            figures[phase] = (
                bytes, requests, Double(end.nanoseconds - begin.nanoseconds) / 1e9, max(0, end.exits - begin.exits - lineExits)
            )
        }
        func mbps(_ phase: String) -> Double { figures[phase].map { $0.bytes / $0.seconds / 1e6 } ?? 0 }
        let hostWrite = dd(["if=/dev/zero", "of=\(image)", "bs=64k", "count=\(imageSize >> 16)", "conv=notrunc,fdatasync"])
        let hostRead = dd(["if=\(image)", "of=/dev/null", "bs=64k"])
        for (phase, host) in [("seqwrite", hostWrite), ("seqread", hostRead)] {
            guard let figure = figures[phase] else { continue }
            print(
                String(
                    format: "  %@: guest %.0f MB/s, host dd %.0f MB/s, ratio %.2f; %.3f VM exits per request (%d requests)", phase,
                    mbps(phase), host, mbps(phase) / host, Double(figure.exits) / max(1, figure.requests), Int(figure.requests)))
        }
        if let random = figures["randread"] {
            print(
                String(
                    format: "  randread: %.0f IOPS (4 KiB); %.3f VM exits per request (%d requests)", random.requests / random.seconds,
                    Double(random.exits) / max(1, random.requests), Int(random.requests)))
        }
        print(String(format: "  whole guest run %.1f s, %d exits", guestSeconds, machine.exitCount))
    }

    /// `dd`'s throughput in MB/s (wall time of the process), or 0 when it fails.
    static func dd(_ arguments: [String]) -> Double {
        guard let dd = executableOnPath("dd") else { return 0 }
        guard let run = spawnAndWait([dd] + arguments), exitStatus(run.status) == 0 else { return 0 }
        return Double(imageSize) / (Double(run.nanoseconds) / 1e9) / 1e6
    }
}
