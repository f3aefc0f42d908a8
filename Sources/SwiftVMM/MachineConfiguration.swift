import Devices
import Firmware
import Logging
import VMCore
import X86Boot

/// Everything needed to build a `Machine`: the guest, its RAM and where its output goes.
public struct MachineConfiguration {
    /// The guest to load and how to enter it.
    public enum Guest {
        /// Raw bytes loaded at `loadAddress` (default: 0x7c00 in real mode, 1 MiB
        /// otherwise) and entered at `entry` (default: the load address) in `mode`.
        case flat(bytes: [UInt8], mode: CPUMode, loadAddress: UInt64? = nil, entry: UInt64? = nil)
        /// An ELF64 executable, loaded by its program headers and entered in long mode.
        case elf(bytes: [UInt8])
        /// A guest from `firmware/`.
        case firmware(FirmwareImage)
    }

    public var guest: Guest
    /// Guest RAM in bytes; a whole number of 4 KiB pages.
    public var memorySize: UInt64
    /// Where COM1's output goes; `nil` means standard output.
    public var serialOutput: (any SerialOutput)?
    public var logger: Logger

    /// 128 MiB, as `swiftvmm run` uses by default.
    public static let defaultMemorySize: UInt64 = 128 << 20
    /// Below 1 MiB a PC memory map (and the VMM's own structures) makes no sense.
    public static let minimumMemorySize: UInt64 = 1 << 20

    public init(
        guest: Guest, memorySize: UInt64 = defaultMemorySize, serialOutput: (any SerialOutput)? = nil,
        logger: Logger = Logger(label: "swiftvmm")
    ) {
        self.guest = guest
        self.memorySize = memorySize
        self.serialOutput = serialOutput
        self.logger = logger
    }
}
