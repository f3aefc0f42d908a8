import Firmware
import Foundation
import Testing

/// Live migration between two `swiftvmm serve` processes, as an operator runs
/// it: the destination waits (`serve --api-sock --incoming tcp:...`), and
/// `swiftvmm migrate --api-sock --to` asks the source's API (`PUT /migrate`)
/// while printing `GET /migrate`'s progress. The guest
/// (`firmware/multiboot/dirty-memory.c`) rewrites its working set and prints a
/// checksum per pass: the two processes' stdout together must be one
/// uninterrupted run's, and the source exit 0 (migrated). The guest never ends by itself
/// (a guest with a fixed number of passes raced the migration under the sanitizers).
@Suite(.serialized) struct MigrateCommandTests {
    /// The sum the guest prints on its line for pass `p` over `kib` KiB: that
    /// of what pass p-1 wrote (zeros, fresh RAM, before pass 1).
    static func passSum(_ p: Int, kib: UInt64) -> String {
        var sum: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in 0..<(kib * 1024 / 8) {
            let word = p == 1 ? 0 : ((i &+ 1) &* 0x9e37_79b9_7f4a_7c15) ^ (UInt64(p - 1) &* 0xd6e8_feb8_6659_fd93)
            let folded = (sum ^ word) &* 0x100_0000_01b3
            sum = folded >> 17 | folded << 47
        }
        let digits = String(sum, radix: 16)
        return "0x" + String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Checks the output of the endless guest (`iters=0`), cut anywhere:
    /// consecutive pass lines from 1, and the right sums for the first ones
    /// and those around `boundary` (the first line another process printed).
    static func checkPasses(_ text: String, kib: UInt64, boundary: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        let whole = text[..<(text.lastIndex(of: "\n") ?? text.startIndex)]
        let lines = whole.split(separator: "\n").filter { $0.hasPrefix("pass ") }
        for (index, line) in lines.enumerated() where !line.hasPrefix("pass \(index + 1) sum ") {
            Issue.record("pass line \(index + 1) is '\(line)'", sourceLocation: sourceLocation)
            return
        }
        for p in Set([1, 2, boundary - 1, boundary, boundary + 1]) where p >= 1 && p <= lines.count {
            let expected = "pass \(p) sum \(passSum(p, kib: kib))"
            #expect(lines[p - 1] == expected, "memory after the move", sourceLocation: sourceLocation)
        }
    }

    /// Lets the destination print two more passes after the source's last one,
    /// stops it, and checks the two processes' lines make one run.
    static func checkContinuation(source: ServedVMM, destination: ServedVMM, kib: UInt64) throws {
        let sourceLines = source.stdout.split(separator: "\n").count - 1
        try destination.waitForOutput("pass \(sourceLines + 2) ")
        destination.kill()
        #expect(source.stdout.hasPrefix("dirty: ws \(kib) KiB"), "\(source.stdout.prefix(200))")
        checkPasses(source.stdout + destination.stdout, kib: kib, boundary: sourceLines + 1)
    }

    @Test func migrateMovesAServedMachineOverTCP() throws {
        let directory = try ScratchDirectory()
        let kernel = try directory.write("dirty.elf", FirmwareImage.multibootDirtyMemory.bytes)
        let config = try directory.write(
            "vm.json",
            #"{"boot-source": {"kernel_image_path": "\#(kernel)", "boot_args": "ws=4M iters=0 rate=16"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 32}}"#
        )
        let port = 30000 + Int(getpid() % 20000)
        let address = "tcp:127.0.0.1:\(port)"
        let destinationSocket = directory.file("destination.sock")
        let destination = try ServedVMM(
            arguments: ["serve", "--api-sock", destinationSocket, "--incoming", address], socketPath: destinationSocket)
        let sourceSocket = directory.file("source.sock")
        let source = try ServedVMM(arguments: ["serve", "--config-file", config, "--api-sock", sourceSocket], socketPath: sourceSocket)
        try source.waitForOutput("pass 2 ")

        let migrate = Process()
        migrate.executableURL = URL(fileURLWithPath: try swiftvmmBinary())
        migrate.arguments = ["migrate", "--api-sock", sourceSocket, "--to", address, "--downtime-ms", "300"]
        let out = Pipe()
        migrate.standardOutput = out
        migrate.standardError = out
        try migrate.run()
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        migrate.waitUntilExit()
        #expect(migrate.terminationStatus == 0, "\(printed)")
        #expect(printed.contains("migration completed"), "\(printed)")
        #expect(printed.contains("migration completed: round"), "the final progress line: \(printed)")

        #expect(try source.waitForExit() == 0, "the source ends once the machine runs on the destination: \(source.stderr)")
        try Self.checkContinuation(source: source, destination: destination, kib: 4096)
    }

    /// The local live upgrade between two processes, each in its sandbox (the
    /// default): memfd-backed RAM goes over a Unix socket as a descriptor, no page copied.
    @Test func aLocalLiveUpgradeHandsTheMemfdToTheNewProcess() throws {
        let directory = try ScratchDirectory()
        let kernel = try directory.write("dirty.elf", FirmwareImage.multibootDirtyMemory.bytes)
        let config = try directory.write(
            "vm.json",
            #"{"boot-source": {"kernel_image_path": "\#(kernel)", "boot_args": "ws=4M iters=0 rate=16"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 32}}"#
        )
        let address = "unix:" + directory.file("upgrade.sock")
        let destinationSocket = directory.file("destination.sock")
        let destination = try ServedVMM(
            arguments: ["serve", "--api-sock", destinationSocket, "--incoming", address], socketPath: destinationSocket)
        let sourceSocket = directory.file("source.sock")
        let source = try ServedVMM(
            arguments: ["serve", "--config-file", config, "--api-sock", sourceSocket, "--memory-backing", "memfd"], socketPath: sourceSocket
        )
        try source.waitForOutput("pass 2 ")

        let migrate = Process()
        migrate.executableURL = URL(fileURLWithPath: try swiftvmmBinary())
        migrate.arguments = ["migrate", "--api-sock", sourceSocket, "--to", address]
        let out = Pipe()
        migrate.standardOutput = out
        migrate.standardError = out
        try migrate.run()
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        migrate.waitUntilExit()
        #expect(migrate.terminationStatus == 0, "\(printed)")
        #expect(printed.contains("migration completed: round 0, 0 pages sent (+0 zero)"), "\(printed)")
        #expect(printed.contains("RAM handed over as a memfd"), "\(printed)")

        #expect(try source.waitForExit() == 0, "\(source.stderr)")
        try Self.checkContinuation(source: source, destination: destination, kib: 4096)
    }

    @Test func aFailedMigrationLeavesTheMachineRunningAndSaysWhy() throws {
        let directory = try ScratchDirectory()
        let kernel = try directory.write("dirty.elf", FirmwareImage.multibootDirtyMemory.bytes)
        let config = try directory.write(
            "vm.json",
            #"{"boot-source": {"kernel_image_path": "\#(kernel)", "boot_args": "ws=1M iters=0 rate=4"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 32}}"#
        )
        let sourceSocket = directory.file("source.sock")
        let source = try ServedVMM(arguments: ["serve", "--config-file", config, "--api-sock", sourceSocket], socketPath: sourceSocket)
        try source.waitForOutput("pass 1 ")
        // Nobody listens there.
        let answer = try source.client.request("PUT", "/migrate", #"{"destination_url": "unix:\#(directory.file("nobody.sock"))"}"#)
        #expect(answer.status == 400)
        #expect(answer.body.contains("Migration error"), "\(answer.body)")
        let progress = try source.client.request("GET", "/migrate")
        #expect(progress.status == 200)
        #expect(progress.body.contains(#""phase":"failed""#), "\(progress.body)")
        // The guest goes on here: two more passes, with the right sums.
        let lines = source.stdout.split(separator: "\n").count - 1
        try source.waitForOutput("pass \(lines + 2) ")
        source.kill()
        Self.checkPasses(source.stdout, kib: 1024, boundary: lines)
    }
}
