import Devices
import Firmware
import Logging
import SwiftVMMConfig
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
        /// A Linux kernel, booted the way a micro-VM monitor does, with no
        /// firmware: a bzImage through the x86 boot protocol's 64-bit entry, or
        /// an ELF `vmlinux` with a PVH entry note in 32-bit protected mode.
        case linux(kernel: [UInt8], initrd: [UInt8]? = nil, commandLine: String = "")
        /// A Multiboot (version 1) kernel, started as QEMU's `-kernel` starts
        /// one: loaded by its ELF32 program headers or header address fields,
        /// with `modules` page-aligned after it, and entered in 32-bit protected
        /// mode with EAX = 0x2BADB002 and EBX = the information structure. Its
        /// command line is `name`, a space and `commandLine` (just `name` when
        /// that is empty), as GRUB and QEMU pass it.
        case multiboot(kernel: [UInt8], name: String, modules: [MultibootModule] = [], commandLine: String = "")
    }

    /// Which devices the machine has.
    public enum Platform: String, Hashable, Sendable, Codable {
        /// COM1 (polled), the debug-exit and POST ports: enough for small guests,
        /// and nothing that could interrupt them, so HLT always comes back to the VMM.
        case minimal
        /// A PC as Linux expects it: KVM's in-kernel PIC, IOAPIC, LAPIC and PIT,
        /// COM1 on IRQ 4, an i8042, the CMOS RTC, PCI configuration ports, and
        /// ACPI tables with sleep-control and reset registers.
        case pc
    }

    public var guest: Guest
    /// Guest RAM in bytes; a whole number of 4 KiB pages.
    public var memorySize: UInt64
    /// Where COM1's output goes; `nil` means standard output.
    public var serialOutput: (any SerialOutput)?
    public var logger: Logger
    /// The device set; `nil` chooses `.pc` for Linux guests and `.minimal` otherwise.
    public var platform: Platform?
    /// CPU features hidden from the guest (see `CPUIDFeature.known`).
    public var hiddenCPUFeatures: [CPUIDFeature] = []
    /// Where COM2's output goes; `nil` discards it (the UART is there either way).
    public var serial2Output: (any SerialOutput)?
    /// Where the debug console (port 0xe9) writes; `nil` means the machine has none.
    public var debugConsoleOutput: (any SerialOutput)?
    /// How many vCPUs: vCPU 0, the bootstrap processor, enters the guest; the
    /// others (application processors) wait for the guest to start them with
    /// INIT and SIPI. More than one needs the PC platform (its local APICs).
    public var vcpuCount = 1
    /// Whether QEMU's `pc-testdev` is plugged in (ports 0xe0-0xe7 and
    /// 0x2000-0x2017, MMIO at 0xff000000; PC platform only), for
    /// kvm-unit-tests run with `TEST_DEVICE=1`.
    public var testDevices = false
    /// Firecracker's boot timer (`--boot-timer`): a guest's write of 123 at
    /// 0xd0000000 prints the time since the machine was built on stderr.
    /// It needs the PC platform, which it chooses when `platform` is nil.
    public var bootTimer = false
    /// The virtio devices (disks, network, vsock, rng, balloon, console), in
    /// the order they get MMIO windows and interrupt lines. They need the PC
    /// platform's interrupt controllers, which they choose when non-empty.
    public var virtioDevices: [VirtioDeviceConfiguration] = []
    /// What guest RAM is made of: `.memfd` lets a migration to this host hand it over uncopied.
    public var memoryBacking: MemoryBacking = .anonymous

    /// The platform in effect.
    public var resolvedPlatform: Platform {
        if let platform { return platform }
        if !virtioDevices.isEmpty { return .pc }
        if bootTimer { return .pc }
        switch guest {
        case .linux, .multiboot: return .pc
        case .firmware(let image) where image.format == .multiboot: return .pc
        default: return vcpuCount > 1 ? .pc : .minimal
        }
    }

    /// The most vCPUs a machine may have (unless KVM allows fewer): xAPIC ids
    /// are 8 bits wide, 0xff is the broadcast id, and the MADT and MP table
    /// list processors by their xAPIC id. A spec is checked against the same limit.
    public static let maximumVCPUCount = MachineSpec.maximumVCPUCount

    /// 128 MiB, as `swiftvmm run` uses by default.
    public static let defaultMemorySize: UInt64 = 128 << 20
    /// 256 MiB, the default when a kernel is given.
    public static let defaultLinuxMemorySize: UInt64 = 256 << 20
    /// Below 1 MiB a PC memory map (and the VMM's own structures) makes no sense.
    public static let minimumMemorySize = MachineSpec.minimumMemorySize

    public init(
        guest: Guest, memorySize: UInt64? = nil, serialOutput: (any SerialOutput)? = nil,
        logger: Logger = Logger(label: "swiftvmm"), platform: Platform? = nil, hiddenCPUFeatures: [CPUIDFeature] = [],
        vcpuCount: Int = 1
    ) {
        self.guest = guest
        if let memorySize {
            self.memorySize = memorySize
        } else if case .linux = guest {
            self.memorySize = Self.defaultLinuxMemorySize
        } else {
            self.memorySize = Self.defaultMemorySize
        }
        self.platform = platform
        self.hiddenCPUFeatures = hiddenCPUFeatures
        self.vcpuCount = vcpuCount
        self.serialOutput = serialOutput
        self.logger = logger
    }
}

extension MachineConfiguration.Guest {
    /// The guest with `arguments` added to its kernel command line, for
    /// guests that have one (Linux, Multiboot); others are unchanged.
    func appendingKernelArguments(_ arguments: String) -> Self {
        func joined(_ line: String) -> String { line.isEmpty ? arguments : line + " " + arguments }
        switch self {
        case .linux(let kernel, let initrd, let commandLine):
            return .linux(kernel: kernel, initrd: initrd, commandLine: joined(commandLine))
        case .multiboot(let kernel, let name, let modules, let commandLine):
            return .multiboot(kernel: kernel, name: name, modules: modules, commandLine: joined(commandLine))
        case .firmware(let image) where image.format == .multiboot:
            return .multiboot(kernel: image.bytes, name: image.name, commandLine: arguments)
        default:
            return self
        }
    }
}
