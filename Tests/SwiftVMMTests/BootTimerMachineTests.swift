import Devices
import Firmware
import Foundation
import Testing
import VMCore

@testable import SwiftVMM

/// The boot timer takes the first MMIO window, as in Firecracker, and the
/// virtio devices move up one window: their windows, the guest's command line
/// and the DSDT all agree.
@Suite(.serialized) final class BootTimerMachineTests {
    let diskPath = NSTemporaryDirectory() + "swiftvmm-boot-timer-disk-\(UUID().uuidString).img"

    init() { _ = FileManager.default.createFile(atPath: diskPath, contents: Data(count: 64 << 10)) }
    deinit { try? FileManager.default.removeItem(atPath: diskPath) }

    @Test func theVirtioWindowsFollowTheBootTimer() throws {
        let output = SerialBufferOutput()
        var configuration = MachineConfiguration(guest: .firmware(FirmwareImage.multibootInfo), memorySize: 16 << 20, serialOutput: output)
        configuration.virtioDevices = [.block(.init(path: diskPath)), .entropy]
        configuration.bootTimer = true
        let machine = try Machine(configuration)
        #expect(machine.mmio.read(address: GuestAddress(0xd000_0000), size: 1).unclaimed == .no, "the boot timer")
        #expect(machine.mmio.read(address: GuestAddress(0xd000_1000), size: 4).value == 0x7472_6976, "virtio magic")
        #expect(machine.mmio.read(address: GuestAddress(0xd000_1008), size: 4).value == 2, "virtio-blk")
        #expect(machine.mmio.read(address: GuestAddress(0xd000_2008), size: 4).value == 4, "virtio-rng")
        #expect(try machine.run(timeout: .seconds(60)) == .debugExit(status: 0), "\(output.text)")
        #expect(
            output.text.contains("virtio_mmio.device=4K@0xd0001000:5 virtio_mmio.device=4K@0xd0002000:6'"), "\(output.text)")
        let tables = try #require(machine.acpiTables)
        let image = try machine.memory.read(count: Int(tables.size), at: tables.base)
        // The first device's _CRS: Memory32Fixed at 0xd0001000, 4 KiB; extended interrupt 5.
        let resources: [UInt8] = [
            0x86, 0x09, 0x00, 0x01, 0x00, 0x10, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00, 0x89, 0x06, 0x00, 0x03, 0x01, 5, 0, 0, 0,
        ]
        #expect((0...(image.count - resources.count)).contains { Array(image[$0..<$0 + resources.count]) == resources })
        #expect(machine.hardware.bootTimer == true, "a snapshot carries it, so a restored machine has the same windows")
    }

    @Test func theBootTimerChoosesThePCPlatform() {
        var configuration = MachineConfiguration(guest: .firmware(FirmwareImage.protectedBootTimer), memorySize: 16 << 20)
        #expect(configuration.resolvedPlatform == .minimal)
        configuration.bootTimer = true
        #expect(configuration.resolvedPlatform == .pc)
    }
}
