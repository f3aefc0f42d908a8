import Devices
import Firmware
import Foundation
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

    /// The hex number after `key=` or `key ` in `line`.
    static func number(_ key: String, in line: String) -> UInt64? {
        guard let range = line.range(of: key + "0x") else { return nil }
        return UInt64(line[range.upperBound...].prefix { $0.isHexDigit }, radix: 16)
    }

    @Test func theGuestFindsEverythingItWasGiven() throws {
        let commandLine = "quiet  mode=test"
        let run = try boot(.multiboot(kernel: Self.kernel, name: "/boot/info.elf", modules: Self.modules, commandLine: commandLine))
        #expect(run.reason == .debugExit(status: 0), "\(run.com1)")
        let lines = run.lines
        #expect(lines.first == "multiboot: eax=0x2badb002 ebx=0x00009000 flags=0x0000024d")
        #expect(lines.last == "done")

        // Memory: 639 KiB below the EBDA; RAM from 1 MiB to the end of RAM; the map the machine describes.
        #expect(lines.contains("mem_lower=0x0000027f mem_upper=\(hexDigits((Self.memory >> 10) - 1024, 8))"))
        let acpi = try #require(run.machine.acpiTables, "a Multiboot guest gets the PC platform")
        let map = try E820Map(
            guestRAM: [(GuestAddress(0), Self.memory)], reserved: [E820Entry(address: acpi.base.rawValue, size: acpi.size, type: .acpi)])
        let expectedMap = map.entries.map {
            "mmap \(hexDigits($0.address, 16)) \(hexDigits($0.size, 16)) type=\(hexDigits($0.type.rawValue, 8))"
        }
        #expect(lines.filter { $0.hasPrefix("mmap ") } == expectedMap)
        #expect(expectedMap.contains { $0.hasSuffix("type=0x00000003") }, "the ACPI tables are in the map")

        // The command line: the image's name, a space, --cmdline.
        #expect(lines.contains("cmdline '/boot/info.elf \(commandLine)'"))

        // Modules: in order, page-aligned, above the kernel and each other, with their bytes and command lines.
        #expect(lines.contains("modules 0x00000002"))
        let moduleLines = lines.filter { $0.hasPrefix("module ") }
        try #require(moduleLines.count == 2)
        var lowest = run.machine.image.endAddress
        for (module, line) in zip(Self.modules, moduleLines) {
            let fields = line.split(separator: " ", maxSplits: 3).map(String.init)
            let start = try #require(UInt64(fields[1].dropFirst(2), radix: 16))
            let end = try #require(UInt64(fields[2].dropFirst(2), radix: 16))
            #expect(start % 4096 == 0, "\(line)")
            #expect(start >= lowest, "\(line) overlaps what comes before it")
            #expect(end - start == UInt64(module.bytes.count))
            let shown = String(decoding: module.bytes.prefix(16).map { (0x20..<0x7f).contains($0) ? $0 : UInt8(ascii: ".") }, as: UTF8.self)
            #expect(fields[3] == "'\(module.commandLine)' data '\(shown)'")
            lowest = end
        }
        #expect(lines.contains("boot_loader_name 'swiftvmm'"))
        #expect(lines.contains("bss zero"))

        // fw_cfg.
        #expect(lines.contains("fw_cfg signature 'QEMU' id 0x00000001"))
        #expect(lines.contains("fw_cfg ram \(hexDigits(Self.memory, 16)) cpus 0x0001 max_cpus 0x0001"))
        #expect(lines.contains("fw_cfg cmdline size \(hexDigits(commandLine.utf8.count + 1, 8)) '\(commandLine)'"))
        #expect(lines.contains("fw_cfg file 0x0020 \(hexDigits(map.entries.count * 20, 8)) etc/e820"))
        #expect(lines.contains("fw_cfg file 0x0021 0x00000008 etc/reserved-memory-end"))
        #expect(lines.contains("fw_cfg reserved-memory-end 0x0000000040000000"), "64 MiB of RAM, rounded up to 1 GiB")

        #expect(run.com2 == "multiboot guest on COM2\n")
        #expect(run.debugConsole == "multiboot guest on debugcon\n")
    }

    /// A kvm-unit-tests-style Multiboot kernel (C, fw_cfg, COM1, COM2 and
    /// debugcon) saved at several points of its run and restored into new
    /// machines ends with exactly the output of an uninterrupted run on
    /// every port.
    @Test func savedMidRunItCarriesOnWhereItStoppedOnEveryPort() throws {
        let guest = MachineConfiguration.Guest.multiboot(
            kernel: Self.kernel, name: "/boot/info.elf", modules: Self.modules, commandLine: "verbose")
        let reference = try boot(guest)
        #expect(reference.reason == .debugExit(status: 0), "\(reference.com1)")
        for exits in [5, 60, 300, 900] {
            let (com1, com2, debugcon) = (SerialBufferOutput(), SerialBufferOutput(), SerialBufferOutput())
            var configuration = MachineConfiguration(guest: guest, memorySize: Self.memory, serialOutput: com1)
            configuration.serial2Output = com2
            configuration.debugConsoleOutput = debugcon
            let machine = try Machine(configuration)
            let stopped = try machine.withDeadline(.seconds(30)) { () throws -> StopReason? in
                for _ in 0..<exits { if let reason = try machine.dispatch(try machine.nextExit()) { return reason } }
                return nil
            }
            #expect(stopped == nil, "the kernel ended before exit \(exits)")
            let directory = NSTemporaryDirectory() + "swiftvmm-multiboot-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try machine.snapshot(to: directory)
            let rest = (SerialBufferOutput(), SerialBufferOutput(), SerialBufferOutput())
            let restored = try Machine.restore(
                from: directory, io: MachineIO(serialOutput: rest.0, serial2Output: rest.1, debugConsoleOutput: rest.2))
            #expect(try restored.run(timeout: .seconds(30)) == reference.reason)
            #expect(com1.text + rest.0.text == reference.com1, "COM1 after exit \(exits)")
            #expect(com2.text + rest.1.text == reference.com2, "COM2 after exit \(exits)")
            #expect(debugcon.text + rest.2.text == reference.debugConsole, "debugcon after exit \(exits)")
        }
    }

    @Test func theEntryStateIsTheSpecifications() throws {
        let (com1, machine) = (
            SerialBufferOutput(),
            try Machine(
                MachineConfiguration(
                    guest: .multiboot(kernel: Self.kernel, name: "k"), memorySize: Self.memory, serialOutput: SerialBufferOutput()))
        )
        _ = com1
        let registers = try machine.registers()
        let special = try machine.specialRegisters()
        #expect(machine.mode == .protected && machine.platform == .pc)
        #expect(registers.rax == 0x2bad_b002)
        #expect(registers.rbx == 0x9000)
        #expect(registers.rip == machine.image.entry)
        #expect(!registers.interruptsEnabled)
        #expect(registers.rflags & (1 << 17) == 0, "EFLAGS.VM clear")
        #expect(special.cr0 & 1 == 1 && special.cr0 & (1 << 31) == 0, "protected mode, paging off")
        #expect(special.efer & (1 << 10) == 0)
        for segment in [special.cs, special.ds, special.es, special.fs, special.gs, special.ss] {
            #expect(segment.base == 0 && segment.limit == 0xffff_ffff && segment.db, "flat 32-bit: \(segment)")
        }
        #expect(special.cs.type & 0b1010 == 0b1010, "CS is execute/read")
        #expect(special.ds.type & 0b1010 == 0b0010, "data segments are read/write")
    }

    @Test func anAddressFieldsKernelRunsWithTheMagicInEAX() throws {
        // An a.out-kludge image: 16 bytes of padding, the header with address
        // fields, then `mov $0xf4, %dx; out %eax, %dx; hlt` at entry_addr.
        let load: UInt32 = 0x20_0000
        let code: [UInt8] = [0x66, 0xba, 0xf4, 0x00, 0xef, 0xf4]
        let flags: UInt32 = 0x1_0003
        let size = UInt32(16 + 32 + code.count)
        let fields = [
            MultibootHeader.magic, flags, 0 &- (MultibootHeader.magic &+ flags), load + 16, load, load + size, load + size + 0x1000,
            load + 48,
        ]
        let image =
            [UInt8](repeating: 0x90, count: 16) + fields.flatMap { value in (0..<4).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) } }
            + code
        let com1 = SerialBufferOutput()
        let machine = try Machine(
            MachineConfiguration(guest: .multiboot(kernel: image, name: "aout"), memorySize: 16 << 20, serialOutput: com1))
        #expect(
            machine.image == LoadedImage(entry: UInt64(load) + 48, lowestAddress: UInt64(load), endAddress: UInt64(load + size + 0x1000)))
        let reason = try machine.run(timeout: .seconds(30))
        #expect(reason == .debugExit(status: 0x2bad_b002), "EAX as it was at entry; \(machine.cpuStateReport())")
        #expect(reason.exitStatus == 0x02)
        let registers = try machine.registers()
        #expect(registers.rax & 0xffff_ffff == 0x2bad_b002 && registers.rbx == 0x9000)
        #expect(try machine.memory.read(count: image.count, at: GuestAddress(UInt64(load))) == image)
    }

    @Test func aFirmwareImageBootsWithItsNameAndNoModulesOrDebugConsole() throws {
        let run = try boot(.firmware(FirmwareImage.multibootInfo), memory: 16 << 20, debugConsole: false)
        #expect(run.reason == .debugExit(status: 0), "\(run.com1)")
        #expect(run.lines.contains("cmdline 'multiboot/info'"))
        #expect(run.lines.contains("modules 0x00000000"))
        #expect(run.lines.contains("fw_cfg cmdline size 0x00000001 ''"))
        #expect(run.lines.contains("fw_cfg reserved-memory-end 0x0000000040000000"))
        #expect(run.debugConsole.isEmpty, "no --debugcon: port 0xe9 is unclaimed and the guest's bytes go nowhere")
        #expect(run.com2 == "multiboot guest on COM2\n")
    }

    @Test func aBrokenKernelFailsTheMachineWithTheBootError() {
        var image = Self.kernel
        let offset = MultibootHeader.find(in: image) ?? 0
        image[offset + 8] ^= 1  // the checksum
        #expect {
            _ = try Machine(MachineConfiguration(guest: .multiboot(kernel: image, name: "k"), serialOutput: SerialBufferOutput()))
        } throws: { error in
            guard case .boot(.invalidField(let field, _, _)) = error as? MachineError else { return false }
            return field.hasPrefix("Multiboot header checksum")
        }
    }
}

/// `value` as `0x` and `digits` zero-padded lower-case hex digits, as the guest prints it.
func hexDigits<T: BinaryInteger>(_ value: T, _ digits: Int) -> String {
    let text = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, digits - text.count)) + text
}
