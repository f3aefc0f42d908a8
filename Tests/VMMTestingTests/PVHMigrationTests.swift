import Devices
import Dispatch
import Foundation
import Migration
import SwiftVMM
import Testing
import VMMTesting

/// Debian's kernel live-migrated mid-boot, just after its banner, from one
/// machine to another in this process over a Unix socket: the destination
/// carries on printing where the source stopped (the boot goes on to its ACPI
/// lines, nothing is printed twice), and the source's run ends as migrated.
/// Skipped under the sanitizers: the boot alone takes tens of seconds there.
@Suite(.serialized) struct PVHMigrationTests {
    final class Box<Value>: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: Value?
        private let ready = DispatchSemaphore(value: 0)
        func put(_ value: Value) {
            lock.withLock { stored = value }
            ready.signal()
        }
        func take() -> Value? {
            guard ready.wait(timeout: .now() + .seconds(120)) == .success else { return nil }
            return lock.withLock { stored }
        }
    }

    final class Unchecked<Value>: @unchecked Sendable {
        let value: Value
        init(_ value: Value) { self.value = value }
    }

    static func wait(for text: String, in output: SerialBufferOutput, seconds: Int = 120) -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while !output.text.contains(text) {
            guard ContinuousClock.now < deadline else { return false }
            usleep(5_000)
        }
        return true
    }

    @Test(.enabled(if: !ProcessResources.underSanitizer, "the kernel's boot takes minutes under a sanitizer"))
    func debianVmlinuxMigratedMidBootCarriesOn() throws {
        let before = SerialBufferOutput()
        let source = try Machine(
            MachineConfiguration(
                guest: .linux(kernel: try PVHBootTests.vmlinux.get(), commandLine: "console=ttyS0 earlyprintk=ttyS0 nokaslr"),
                memorySize: 256 << 20, serialOutput: before))
        let sourceEnd = Box<StopReason?>()
        let shared = Unchecked(source)
        Thread.detachNewThread { sourceEnd.put(try? shared.value.run(timeout: .seconds(300))) }
        #expect(Self.wait(for: "Command line: ", in: before), "the kernel printed its banner: \(before.text)")

        let address = MigrationAddress.unix(path: "/tmp/swiftvmm-pvh-migration-\(getpid()).sock")
        let after = SerialBufferOutput()
        let received = Box<Unchecked<Machine>?>()
        let listening = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let machine = try? Machine.receiveMigration(at: address, io: MachineIO(serialOutput: after), acceptTimeout: .seconds(60)) {
                listening.signal()
            }
            listening.signal()
            received.put(machine.map { Unchecked($0) })
        }
        listening.wait()
        let report = try source.migrate(to: address)
        #expect(sourceEnd.take() == .migrated)
        let destination = try #require(received.take() ?? nil)
        let destinationEnd = Box<StopReason?>()
        Thread.detachNewThread { destinationEnd.put(try? destination.value.run(timeout: .seconds(300))) }
        // The source went on printing during the pre-copy: what the destination
        // prints next may be any later line, up to the last one this host can
        // run (SLUB's cmpxchg16b, which PVM cannot emulate, comes after it).
        let deadline = ContinuousClock.now + .seconds(120)
        var carriedOn = false
        while ContinuousClock.now < deadline {
            if (before.text + after.text).contains("ACPI: Reserving APIC table memory"), !after.text.isEmpty {
                carriedOn = true
                break
            }
            usleep(5_000)
        }
        destination.value.requestStop()
        #expect(destinationEnd.take() == .stopRequested)
        #expect(carriedOn, "the migrated kernel went on: \(after.text)")
        let whole = before.text + after.text
        #expect(whole.components(separatedBy: "Linux version 6.").count == 2, "the banner once: \(whole)")
        #expect(!after.text.contains("Linux version"), "the migrated kernel did not start again")
        #expect(report.downtime < .seconds(5), "\(report)")
    }
}
