import Devices
import Firmware
import Foundation
import GuestMemory
import Testing
import VMCore
import Virtio
import VirtioDevices
import VirtioTestDriver

@testable import SwiftVMM

/// Virtio devices in a real machine: where they sit, how a guest finds them,
/// and a request served by the I/O thread through the ioeventfd's eventfd.
@Suite(.serialized) final class VirtioMachineTests {
    let diskPath = NSTemporaryDirectory() + "swiftvmm-machine-disk-\(UUID().uuidString).img"

    init() {
        _ = FileManager.default.createFile(atPath: diskPath, contents: Data(count: 64 << 10))
    }

    deinit { try? FileManager.default.removeItem(atPath: diskPath) }

    func machine(_ guest: MachineConfiguration.Guest, output: SerialBufferOutput) throws -> Machine {
        var configuration = MachineConfiguration(guest: guest, memorySize: 16 << 20, serialOutput: output)
        configuration.virtioDevices = [.block(.init(path: diskPath)), .entropy]
        return try Machine(configuration)
    }

    @Test func aMultibootGuestIsToldWhereTheDevicesAreOnItsCommandLine() throws {
        let output = SerialBufferOutput()
        let machine = try machine(.firmware(FirmwareImage.multibootInfo), output: output)
        #expect(try machine.run(timeout: .seconds(60)) == .debugExit(status: 0), "\(output.text)")
        #expect(
            output.text.contains("cmdline 'multiboot/info virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6'"),
            "\(output.text)")
    }

    @Test func theTransportsAnswerAtTheirWindowsAndTheDSDTListsThem() throws {
        let machine = try machine(.firmware(FirmwareImage.multibootInfo), output: SerialBufferOutput())
        #expect(machine.platform == .pc, "virtio devices bring the PC platform")
        #expect(machine.mmio.read(address: GuestAddress(0xd000_0000), size: 4).value == 0x7472_6976)
        #expect(machine.mmio.read(address: GuestAddress(0xd000_0008), size: 4).value == 2, "virtio-blk")
        #expect(machine.mmio.read(address: GuestAddress(0xd000_1008), size: 4).value == 4, "virtio-rng")
        #expect(machine.mmio.read(address: GuestAddress(0xd000_2000), size: 4).unclaimed != .no, "no third device")
        let tables = try #require(machine.acpiTables)
        let image = try machine.memory.read(count: Int(tables.size), at: tables.base)
        let hid = Array("LNRO0005".utf8)
        let found = (0...(image.count - hid.count)).filter { Array(image[$0..<$0 + hid.count]) == hid }
        #expect(found.count == 2, "one LNRO0005 device per transport")
        // The first device's _CRS: Memory32Fixed at 0xd0000000, 4 KiB; extended interrupt 5, edge, active high.
        let resources: [UInt8] = [
            0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00, 0x89, 0x06, 0x00, 0x03, 0x01, 5, 0, 0, 0,
        ]
        #expect((0...(image.count - resources.count)).contains { Array(image[$0..<$0 + resources.count]) == resources })
    }

    @Test func theIOThreadServesADoorbellAndTheFileHoldsTheBytes() throws {
        let machine = try machine(.firmware(FirmwareImage.multibootInfo), output: SerialBufferOutput())
        let transport = try #require(machine.virtioTransports.first)
        let driver = VirtioTestDriver(transport: transport, memory: machine.memory.view, firstFreeAddress: 0x80_0000)
        #expect(driver.negotiate())
        driver.setUpQueue(0, size: 16)
        #expect(driver.start())
        let header: [UInt8] = [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]  // write, sector 2
        let payload = Array("written by the I/O thread".utf8)
        driver.submit(queue: 0, [.readable(header), .readable(payload), .writable(1)])
        // The doorbell only signals the queue's eventfd; the I/O thread does the work.
        driver.write(0x50, 0)
        var used: [(id: UInt32, length: UInt32)] = []
        for _ in 0..<200 where used.isEmpty {
            used = driver.takeUsed(queue: 0)
            if used.isEmpty { usleep(10_000) }
        }
        #expect(used.count == 1)
        let file = try Data(contentsOf: URL(fileURLWithPath: diskPath))
        #expect(Array(file[1024..<1024 + payload.count]) == payload)
        #expect(driver.read(0x60) & 1 == 1, "the used-buffer interrupt was raised")
    }

    @Test func aSnapshotCarriesTheRunningQueues() throws {
        let machine = try machine(.firmware(FirmwareImage.multibootInfo), output: SerialBufferOutput())
        let transport = try #require(machine.virtioTransports.first)
        let driver = VirtioTestDriver(transport: transport, memory: machine.memory.view, firstFreeAddress: 0x80_0000)
        #expect(driver.negotiate())
        driver.setUpQueue(0, size: 16)
        #expect(driver.start())
        let directory = NSTemporaryDirectory() + "swiftvmm-virtio-snapshot-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try machine.snapshot(to: directory)
        let restored = try Machine.restore(from: directory, io: MachineIO(serialOutput: SerialBufferOutput()))
        let copy = try #require(restored.virtioTransports.first)
        #expect(copy.isActive)
        #expect(copy.state == transport.state)
    }

    @Test func virtioNeedsThePCPlatform() {
        var configuration = MachineConfiguration(guest: .firmware(FirmwareImage.multibootInfo), platform: .minimal)
        configuration.virtioDevices = [.entropy]
        #expect(throws: (any Error).self) { try Machine(configuration) }
    }
}
