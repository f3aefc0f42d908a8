import Firmware
import Foundation
import Testing

/// Live migration between two `swiftvmm serve` processes, as an operator runs
/// it: the destination waits (`serve --api-sock --incoming tcp:...`), and
/// `swiftvmm migrate --api-sock --to` asks the source's API (`PUT /migrate`)
/// while printing `GET /migrate`'s progress. The guest
/// (`firmware/multiboot/dirty-memory.c`) rewrites its working set and prints a
/// checksum per pass: the two processes' stdout together must be one
/// uninterrupted run's, the source exit 0 (migrated) and the destination with the guest's status.
@Suite(.serialized) struct MigrateCommandTests {
    static func expectedOutput(kib: UInt64, passes: UInt64, rate: UInt64) -> String {
        let words = kib * 1024 / 8
        func sum(_ p: UInt64) -> String {
            var sum: UInt64 = 0xcbf2_9ce4_8422_2325
            for i in 0..<words {
                let word = p == 0 ? 0 : ((i &+ 1) &* 0x9e37_79b9_7f4a_7c15) ^ (p &* 0xd6e8_feb8_6659_fd93)
                let folded = (sum ^ word) &* 0x100_0000_01b3
                sum = folded >> 17 | folded << 47
            }
            let digits = String(sum, radix: 16)
            return "0x" + String(repeating: "0", count: 16 - digits.count) + digits
        }
        var text = "dirty: ws \(kib) KiB at 0x01000000, rate \(rate) MiB/s, \(passes) passes\n"
        for p in 1...passes { text += "pass \(p) sum \(sum(p - 1))\n" }
        return text + "dirty: done \(passes) passes, sum \(sum(passes)), errors 0\n"
    }

    @Test func migrateMovesAServedMachineOverTCP() throws {
        let directory = try ScratchDirectory()
        let kernel = try directory.write("dirty.elf", FirmwareImage.multibootDirtyMemory.bytes)
        let config = try directory.write(
            "vm.json",
            #"{"boot-source": {"kernel_image_path": "\#(kernel)", "boot_args": "ws=4M iters=12 rate=16"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 32}}"#
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
        #expect(try destination.waitForExit() == 0x20, "\(destination.stderr)")
        #expect(!destination.stdout.isEmpty)
        #expect(source.stdout + destination.stdout == Self.expectedOutput(kib: 4096, passes: 12, rate: 16))
    }

    /// The local live upgrade between two processes, each in its sandbox (the
    /// default): memfd-backed RAM goes over a Unix socket as a descriptor, no page copied.
    @Test func aLocalLiveUpgradeHandsTheMemfdToTheNewProcess() throws {
        let directory = try ScratchDirectory()
        let kernel = try directory.write("dirty.elf", FirmwareImage.multibootDirtyMemory.bytes)
        let config = try directory.write(
            "vm.json",
            #"{"boot-source": {"kernel_image_path": "\#(kernel)", "boot_args": "ws=4M iters=12 rate=16"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 32}}"#
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
        #expect(try destination.waitForExit() == 0x20, "\(destination.stderr)")
        #expect(!destination.stdout.isEmpty)
        #expect(source.stdout + destination.stdout == Self.expectedOutput(kib: 4096, passes: 12, rate: 16))
    }

    @Test func aFailedMigrationLeavesTheMachineRunningAndSaysWhy() throws {
        let directory = try ScratchDirectory()
        let kernel = try directory.write("dirty.elf", FirmwareImage.multibootDirtyMemory.bytes)
        let config = try directory.write(
            "vm.json",
            #"{"boot-source": {"kernel_image_path": "\#(kernel)", "boot_args": "ws=1M iters=6 rate=4"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 32}}"#
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
        #expect(try source.waitForExit() == 0x20)
        #expect(source.stdout == Self.expectedOutput(kib: 1024, passes: 6, rate: 4))
    }
}
