import ACPI
import Devices
import GuestMemory
import X86Boot

/// What a PC's fw_cfg device offers, as plain values: built once from the
/// guest and the memory map at boot, and carried by a snapshot, so that a
/// restored machine (which never sees the guest's files) offers the same.
struct FirmwareConfigContents: Codable, Hashable, Sendable {
    struct File: Codable, Hashable, Sendable {
        var name: String
        var bytes: [UInt8]
    }

    var ramSize: UInt64
    var cpuCount: UInt16
    var commandLine: [UInt8]?
    var files: [File]

    /// A device offering these contents.
    func device() -> FirmwareConfig {
        FirmwareConfig(
            ramSize: ramSize, cpuCount: cpuCount, commandLine: commandLine,
            files: files.map { FirmwareConfig.File(name: $0.name, bytes: $0.bytes) })
    }
}

extension PlatformSetup {
    /// The fw_cfg contents of a PC: RAM size, CPU count, the kernel command line
    /// as given by the user (QEMU's `FW_CFG_CMDLINE_*`, without the image name
    /// that Multiboot's command line starts with) and two files QEMU's PC also has:
    ///
    /// - `etc/e820`: the memory map the guest is told about, as packed
    ///   `struct e820_entry { u64 address; u64 length; u32 type; }` records, little-endian;
    /// - `etc/reserved-memory-end`: u64 LE, the end of the address space
    ///   reserved for RAM, rounded up to 1 GiB. QEMU's PC offers it when memory
    ///   hot-plug is configured, for SeaBIOS and OVMF to put the 64-bit PCI window
    ///   above it; with no hot-plug the RAM limit is the end of RAM itself. This is
    ///   the maximum RAM limit fw_cfg gives a guest (`FW_CFG_RAM_SIZE` is the current size).
    static func firmwareConfigContents(
        guest: MachineConfiguration.Guest, cpuCount: Int, acpi: ACPITables?, reserving reserved: [E820Entry],
        memory: borrowing GuestMemory
    ) throws(MachineError) -> FirmwareConfigContents {
        let memoryMap: E820Map
        do { memoryMap = try GuestLoader.memoryMap(acpi: acpi, reserving: reserved, memory: memory) } catch { throw .boot(error) }
        let ramEnd = memory.ranges.map { $0.base.rawValue + $0.size }.max() ?? 0
        let gib: UInt64 = 1 << 30
        let reservedMemoryEnd = (ramEnd + gib - 1) / gib * gib
        let commandLine: String?
        switch guest {
        case .linux(_, _, let text), .multiboot(_, _, _, let text): commandLine = text
        case .firmware(let image) where image.format == .multiboot: commandLine = ""
        default: commandLine = nil
        }
        return FirmwareConfigContents(
            ramSize: memory.size, cpuCount: UInt16(clamping: cpuCount), commandLine: commandLine.map { Array($0.utf8) },
            files: [
                .init(name: "etc/e820", bytes: memoryMap.encoded),
                .init(name: "etc/reserved-memory-end", bytes: (0..<8).map { UInt8(truncatingIfNeeded: reservedMemoryEnd >> ($0 * 8)) }),
            ])
    }
}
