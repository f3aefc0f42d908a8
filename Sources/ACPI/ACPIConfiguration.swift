/// What the ACPI tables describe: the processors, the interrupt controllers,
/// and the I/O ports through which the guest powers off and resets.
///
/// The defaults describe a KVM machine with the in-kernel irqchip: local APICs
/// at 0xfee00000, one I/O APIC (id 0, 24 pins from GSI 0) at 0xfec00000, the
/// PIT's IRQ 0 on GSI 2, and NMIs on every processor's LINT1.
public struct ACPIConfiguration: Hashable, Sendable {
    /// The APIC id of each processor. Processor `i` gets ACPI processor UID `i`;
    /// the first is the boot processor.
    public var apicIDs: [UInt8]
    /// Where every processor's local APIC registers appear.
    public var localAPICAddress: UInt32 = 0xfee0_0000
    /// The one I/O APIC.
    public var ioAPIC = IOAPIC()
    /// ISA IRQs that do not reach the I/O APIC on the pin of the same number.
    public var interruptSourceOverrides: [InterruptSourceOverride] = [.pitTimer]
    /// Which local APIC inputs carry NMIs.
    public var localAPICNMIs: [LocalAPICNMI] = [.lint1OnAllProcessors]
    /// The MADT's PCAT_COMPAT flag: the machine also has dual 8259 PICs that
    /// the OS must mask. Off by default because without S3 the FADT declares a
    /// hardware-reduced platform, on which Linux never drives the 8259s; a
    /// machine with S3 (full ACPI) and 8259s sets it.
    public var pcatCompatible = false
    /// The FADT's IA-PC boot architecture flags.
    public var bootArchitecture: IAPCBootArchitecture = [.vgaNotPresent, .cmosRTCNotPresent]
    /// The 8-bit I/O port of the FADT's SLEEP_CONTROL_REG. On a hardware-reduced
    /// platform (no `suspendToRAM`), Linux powers off by writing
    /// `SleepRegisters.controlValue(sleepType: s5SleepType)` here (0x34 with the
    /// default S5 type); with PM1 blocks it writes PM1a_CNT instead.
    public var sleepControlPort: UInt16 = 0x600
    /// The 8-bit I/O port of the FADT's SLEEP_STATUS_REG. Before sleeping Linux
    /// writes `SleepRegisters.wakeStatus` here to clear WAK_STS.
    public var sleepStatusPort: UInt16 = 0x601
    /// The SLP_TYP value of the S5 (soft off) state, published as `\_S5_` in the DSDT.
    public var s5SleepType: UInt8 = 5
    /// The 8-bit I/O port of the FADT's RESET_REG.
    public var resetPort: UInt16 = 0x602
    /// What Linux writes to `resetPort` to reset the machine (reboot=acpi, its default).
    public var resetValue: UInt8 = 0x01
    /// The OEM id in every table header and the RSDP: six printable ASCII characters.
    public var oemID = "SWVMM "
    /// The OEM table id in every table header: eight printable ASCII characters.
    public var oemTableID = "SWIFTVMM"
    /// The FADT's hypervisor vendor identity: eight printable ASCII characters.
    public var hypervisorVendorID = "SWIFTVMM"
    /// Memory-mapped devices (virtio-mmio transports) the DSDT lists under `\_SB`.
    public var mmioDevices: [ACPIMMIODevice] = []
    /// Legacy devices at fixed I/O ports (UARTs, the i8042, the RTC) the DSDT
    /// lists under `\_SB`, so that an OS maps their ISA IRQs.
    public var isaDevices: [ACPIISADevice] = []
    /// S3, suspend to RAM: `nil` (the default) offers no S3; otherwise the
    /// DSDT gets `\_S3_`, a FACS holds the waking vector, and the FADT points
    /// at the PM1a event and control blocks the machine must implement.
    public var suspendToRAM: SuspendToRAM?

    /// A machine whose processors have the APIC ids `apicIDs`, in that order.
    public init(apicIDs: [UInt8]) {
        self.apicIDs = apicIDs
    }

    /// A machine with `vCPUCount` processors with APIC ids 0, 1, 2, ...,
    /// the ids KVM gives vCPUs created with ids 0, 1, 2, ...
    public init(vCPUCount: Int) {
        self.init(apicIDs: (0..<vCPUCount).map { UInt8(truncatingIfNeeded: $0) })
    }
}

/// What the tables say about S3 (suspend to RAM): its SLP_TYP value, the
/// PM1a register blocks through which a guest enters it, and the SCI.
///
/// With S3 the platform is not hardware-reduced: ACPICA (Linux's and most
/// others') ignores the FACS of a hardware-reduced FADT, so an OS there has
/// nowhere to leave its waking vector and cannot resume. The FADT then
/// describes fixed hardware: the PM1a blocks, the SCI, no SMI command port
/// (so the platform is always in ACPI mode), no PM timer and no GPE blocks.
/// The sleep control and status registers stay listed for OSes that use them.
public struct SuspendToRAM: Hashable, Sendable {
    /// The SLP_TYP value of S3, published as `\_S3_` in the DSDT (1, as in QEMU's DSDT).
    public var sleepType: UInt8
    /// The first of the 4 I/O ports of PM1a_EVT_BLK: PM1 status (2 bytes), then PM1 enable (2 bytes).
    public var pm1EventPort: UInt16
    /// The first of the 2 I/O ports of PM1a_CNT_BLK.
    public var pm1ControlPort: UInt16
    /// The SCI's ISA IRQ (SCI_INT, 0-15), 9 as on a PC. An OS takes it as
    /// level-triggered, active low, unless an interrupt source override says
    /// otherwise: a machine that drives it active high (as KVM's irqchip
    /// lines are) adds `InterruptSourceOverride.sci(sciInterrupt)`.
    public var sciInterrupt: UInt16

    public init(sleepType: UInt8 = 1, pm1EventPort: UInt16 = 0x604, pm1ControlPort: UInt16 = 0x608, sciInterrupt: UInt16 = 9) {
        self.sleepType = sleepType
        self.pm1EventPort = pm1EventPort
        self.pm1ControlPort = pm1ControlPort
        self.sciInterrupt = sciInterrupt
    }
}

/// An I/O APIC entry of the MADT.
public struct IOAPIC: Hashable, Sendable {
    public var id: UInt8
    /// The guest-physical address of its register window.
    public var address: UInt32
    /// The GSI of its pin 0.
    public var gsiBase: UInt32

    public init(id: UInt8 = 0, address: UInt32 = 0xfec0_0000, gsiBase: UInt32 = 0) {
        self.id = id
        self.address = address
        self.gsiBase = gsiBase
    }
}

/// The polarity and trigger mode of an interrupt input: the MPS INTI flags of
/// MADT entries (ACPI 6.5, table 5.50).
public struct InterruptInputFlags: Hashable, Sendable {
    public enum Polarity: UInt16, Sendable {
        /// As the bus specifies: active high for ISA.
        case conforming = 0b00
        case activeHigh = 0b01
        case activeLow = 0b11
    }

    public enum TriggerMode: UInt16, Sendable {
        /// As the bus specifies: edge for ISA.
        case conforming = 0b00
        case edge = 0b01
        case level = 0b11
    }

    public var polarity: Polarity
    public var triggerMode: TriggerMode

    public init(polarity: Polarity = .conforming, triggerMode: TriggerMode = .conforming) {
        self.polarity = polarity
        self.triggerMode = triggerMode
    }

    /// Polarity in bits 0-1, trigger mode in bits 2-3.
    public var encoded: UInt16 { polarity.rawValue | triggerMode.rawValue << 2 }

    /// Both as the bus specifies.
    public static let conforming = InterruptInputFlags()
}

/// An Interrupt Source Override entry of the MADT: ISA IRQ `source` arrives
/// on `gsi` instead of the GSI of the same number.
public struct InterruptSourceOverride: Hashable, Sendable {
    public var source: UInt8
    public var gsi: UInt32
    public var flags: InterruptInputFlags

    public init(source: UInt8, gsi: UInt32, flags: InterruptInputFlags = .conforming) {
        self.source = source
        self.gsi = gsi
        self.flags = flags
    }

    /// The PIT's IRQ 0 on I/O APIC pin 2, where a PC wires it (pin 0 carries
    /// the 8259's output in ExtINT mode). The machine's GSI routing must agree.
    public static let pitTimer = InterruptSourceOverride(source: 0, gsi: 2)
    /// The SCI on ISA IRQ `irq` (9 on a PC), level-triggered and active high (QEMU's override).
    public static func sci(_ irq: UInt16 = 9) -> InterruptSourceOverride {
        InterruptSourceOverride(
            source: UInt8(truncatingIfNeeded: irq), gsi: UInt32(irq), flags: InterruptInputFlags(polarity: .activeHigh, triggerMode: .level)
        )
    }
}

/// A Local APIC NMI entry of the MADT: which LINT input of which processor
/// carries NMIs.
public struct LocalAPICNMI: Hashable, Sendable {
    /// The ACPI processor UID, or `allProcessors`.
    public var processorUID: UInt8
    public var flags: InterruptInputFlags
    /// 0 for LINT0, 1 for LINT1.
    public var lint: UInt8

    public init(processorUID: UInt8, flags: InterruptInputFlags = .conforming, lint: UInt8) {
        self.processorUID = processorUID
        self.flags = flags
        self.lint = lint
    }

    /// The processor UID that means every processor.
    public static let allProcessors: UInt8 = 0xff

    /// NMIs on LINT1 of every processor, as on a PC (LINT0 is ExtINT from the 8259).
    public static let lint1OnAllProcessors = LocalAPICNMI(processorUID: allProcessors, lint: 1)
}

/// The FADT's IAPC_BOOT_ARCH flags (ACPI 6.5, table 5.11): which legacy PC
/// devices the OS may probe.
///
/// Linux only probes for an i8042 when `i8042` is set, and registers no CMOS
/// RTC when `cmosRTCNotPresent` is set.
public struct IAPCBootArchitecture: OptionSet, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Legacy devices on the LPC or ISA bus that the OS cannot enumerate.
    public static let legacyDevices = IAPCBootArchitecture(rawValue: 1 << 0)
    /// An 8042 keyboard controller at ports 0x60 and 0x64.
    public static let i8042 = IAPCBootArchitecture(rawValue: 1 << 1)
    /// Probing for VGA hardware is unsafe: there is none.
    public static let vgaNotPresent = IAPCBootArchitecture(rawValue: 1 << 2)
    /// The OS must not enable MSIs.
    public static let msiNotSupported = IAPCBootArchitecture(rawValue: 1 << 3)
    /// The OS must not enable PCIe ASPM.
    public static let pcieASPMControls = IAPCBootArchitecture(rawValue: 1 << 4)
    /// There is no CMOS RTC at ports 0x70 and 0x71.
    public static let cmosRTCNotPresent = IAPCBootArchitecture(rawValue: 1 << 5)
}

/// The bits of the hardware-reduced sleep registers (ACPI 6.5, 4.8.3.7 and 4.8.3.8),
/// for the device that implements them.
public enum SleepRegisters {
    /// SLEEP_CONTROL_REG bit 5, SLP_EN: enter the state in SLP_TYP.
    public static let sleepEnable: UInt8 = 1 << 5
    /// SLEEP_CONTROL_REG bits 2-4, SLP_TYP.
    public static let sleepTypeMask: UInt8 = 0b0001_1100
    /// SLEEP_STATUS_REG bit 7, WAK_STS: written as 1 to clear it before sleeping.
    public static let wakeStatus: UInt8 = 1 << 7

    /// The byte the OS writes to the sleep control register to enter the sleep
    /// state with SLP_TYP `sleepType`: for S5 type 5, 0x34.
    public static func controlValue(sleepType: UInt8) -> UInt8 {
        (sleepType << 2) & sleepTypeMask | sleepEnable
    }
}
