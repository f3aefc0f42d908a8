import ACPI
import Devices
import GuestMemory
import KVM
import SwiftVMMConfig
import VMCore
import X86Boot

#if canImport(Glibc)
    import Glibc
#endif

/// The steps that make a VM a PC: each a small function the `Machine` recipe calls.
enum PlatformSetup {
    /// The TSS VT-x needs for real-mode code without unrestricted guest: three
    /// pages below the 4 GiB boundary, where no RAM will be.
    static let tssAddress = GuestAddress(0xfffb_d000)
    /// The page VT-x uses as an identity map in real mode, just below the TSS.
    static let identityMapAddress = GuestAddress(0xfffb_c000)
    /// RAM above this goes above 4 GiB on a PC, leaving room for MMIO (the
    /// IOAPIC at 0xfec00000, the LAPIC at 0xfee00000, future PCI BARs).
    static let lowRAMLimit: UInt64 = 0xc000_0000
    /// Where the ACPI tables go: the BIOS area 0xE0000-0xFFFFF, where kernels
    /// without a pointer to the RSDP scan for it.
    static let acpiBase = GuestAddress(0xe_0000)
    /// Where the Intel MP table goes: the start of the BIOS ROM area, one of
    /// the places the MP specification tells an OS to search, clear of the
    /// ACPI tables (which end far below it even with 255 processors).
    static let mpTableBase = GuestAddress(0xf_0000)

    static func prepareVM(_ vm: borrowing KVMVirtualMachine, kvm: borrowing KVMSystem, platform: MachineConfiguration.Platform)
        throws(KVMError)
    {
        if try kvm.checkExtension(.setTSSAddress) > 0 { try vm.setTSSAddress(tssAddress) }
        guard platform == .pc else { return }
        if try kvm.checkExtension(.setIdentityMapAddress) > 0 { try vm.setIdentityMapAddress(identityMapAddress) }
        try vm.createIRQChip()
        if try kvm.checkExtension(.irqRouting) > 0 { try vm.setGSIRouting(pcInterruptRoutes) }
        try vm.createPIT()
    }

    /// The ISA interrupt wiring our MADT and MP table describe, as QEMU's PC
    /// has it: lines 0-15 on the two PICs (2 is the cascade, so no device
    /// uses it) and lines 1-23 on the IOAPIC pin of the same number, except
    /// the timer's line 0, which goes to IOAPIC pin 2 (the interrupt source
    /// override). KVM's default table sends line 0 to pin 0, where a guest
    /// that believes the tables would never see the PIT.
    static let pcInterruptRoutes: [IRQRoute] = {
        var routes: [IRQRoute] = []
        for line: UInt32 in 0..<16 where line != 2 {
            routes.append(IRQRoute(gsi: line, chip: line < 8 ? .masterPIC : .slavePIC, pin: line % 8))
        }
        for line: UInt32 in 0..<24 where line != 2 {
            routes.append(IRQRoute(gsi: line, chip: .ioapic, pin: line == 0 ? 2 : line))
        }
        return routes
    }()

    /// Guest RAM: one region, or on a PC with more than 3 GiB, the rest above 4 GiB.
    static func ramLayout(size: UInt64, platform: MachineConfiguration.Platform) -> [(base: GuestAddress, size: UInt64)] {
        guard platform == .pc, size > lowRAMLimit else { return [(GuestAddress(0), size)] }
        return [(GuestAddress(0), lowRAMLimit), (GuestAddress(1 << 32), size - lowRAMLimit)]
    }

    /// CPUID for every guest (without it the guest's CPUID lacks long mode, and
    /// KVM refuses a guest WRMSR that sets EFER.LME); on a PC also the boot
    /// MSRs, the FPU state after FNINIT, and the LAPIC's LINT0/LINT1 wiring.
    static func prepareVCPU(
        _ vcpu: borrowing KVMVCPU, id: UInt32, count: UInt32 = 1, kvm: borrowing KVMSystem, platform: MachineConfiguration.Platform,
        hiding hidden: [CPUIDFeature]
    ) throws(KVMError) {
        try vcpu.setCPUID(CPUIDConfiguration.entries(supported: try kvm.supportedCPUID(), vcpuID: id, vcpuCount: count, hiding: hidden))
        guard platform == .pc else { return }
        try vcpu.setMSRs(bootMSRs)
        try vcpu.setFPU(FPUState())
        try vcpu.setLAPICRegisters(LocalAPIC.wireLINTs(try vcpu.lapicRegisters()))
    }

    /// MSRs a kernel expects to find at their reset values, as Firecracker
    /// and kvmtool set them; IA32_MISC_ENABLE gets fast-string operations on.
    static let bootMSRs: [(index: UInt32, value: UInt64)] = [
        (MSR.sysenterCS, 0), (0x175, 0), (0x176, 0),  // SYSENTER_CS/ESP/EIP
        (MSR.star, 0), (MSR.lstar, 0), (0xc000_0083, 0), (0xc000_0084, 0),  // STAR, LSTAR, CSTAR, SYSCALL_MASK
        (MSR.kernelGSBase, 0), (MSR.tsc, 0), (MSR.miscEnable, 1),
    ]

    /// The SLP_TYP of S3 in the DSDT's `\_S3_`: 1, as in QEMU's (kvm-unit-tests' `s3` writes it as a constant).
    static let s3SleepType: UInt8 = 1

    /// The PC devices at fixed ports, as the DSDT lists them (with QEMU's
    /// names and IDs). The RTC lists no IRQ because `CMOSRTC` raises none
    /// while the guest runs (Linux with the 8259s assumes IRQ 8 anyway, and
    /// then sees no alarm interrupt; the alarm still wakes a suspended guest).
    static let isaDevices: [ACPIISADevice] = [
        ACPIISADevice(
            name: "COM1", hardwareID: "PNP0501", uniqueID: 1, ports: [.init(base: PortMap.com1.base, length: UInt8(PortMap.com1.length))],
            irqs: [UInt8(PortMap.com1.irq)]),
        ACPIISADevice(
            name: "COM2", hardwareID: "PNP0501", uniqueID: 2, ports: [.init(base: PortMap.com2.base, length: UInt8(PortMap.com2.length))],
            irqs: [UInt8(PortMap.com2.irq)]),
        ACPIISADevice(
            name: "KBD_", hardwareID: "PNP0303",
            ports: [.init(base: PortMap.i8042Data, length: 1), .init(base: PortMap.i8042StatusCommand, length: 1)],
            irqs: [UInt8(PortMap.i8042KeyboardIRQ)]),
        ACPIISADevice(name: "MOU_", hardwareID: "PNP0F13", ports: [], irqs: [UInt8(PortMap.i8042AuxIRQ)]),
        ACPIISADevice(
            name: "RTC_", hardwareID: "PNP0B00", ports: [.init(base: PortMap.cmos.base, length: UInt8(PortMap.cmos.length))], irqs: []),
    ]

    /// What the ACPI tables say about this machine; the devices above match it.
    static func acpiConfiguration(vcpuCount: Int, mmioDevices: [ACPIMMIODevice] = []) -> ACPIConfiguration {
        var configuration = ACPIConfiguration(vCPUCount: vcpuCount)
        configuration.mmioDevices = mmioDevices
        configuration.isaDevices = isaDevices
        configuration.bootArchitecture = [.i8042, .vgaNotPresent]
        configuration.sleepControlPort = PortMap.acpiSleep.base
        configuration.sleepStatusPort = PortMap.acpiSleep.base + 1
        configuration.resetPort = PortMap.acpiReset.base
        let suspendToRAM = SuspendToRAM(
            sleepType: s3SleepType, pm1EventPort: PortMap.acpiPM1.base,
            pm1ControlPort: PortMap.acpiPM1.base + ACPIPM1Registers.controlOffset)
        configuration.suspendToRAM = suspendToRAM
        // Full ACPI (S3 is offered): the SCI, and KVM's 8259s declared.
        configuration.interruptSourceOverrides = [.pitTimer, .sci(suspendToRAM.sciInterrupt)]
        configuration.pcatCompatible = true
        return configuration
    }

    /// Builds the MP table for processors 0..<`vcpuCount` (APIC ids as in the
    /// MADT) and writes it at `mpTableBase`.
    static func writeMPTable(vcpuCount: Int, into memory: borrowing GuestMemory) throws(MachineError) -> MPTable {
        let table: MPTable
        do { table = try MPTableBuilder.build(MPConfiguration(processorCount: vcpuCount), at: mpTableBase) } catch { throw .mpTable(error) }
        do { try memory.write(table.bytes, at: table.base) } catch { throw .memory(error) }
        return table
    }

    /// Builds the ACPI tables and writes them at `acpiBase`.
    static func writeACPITables(vcpuCount: Int, mmioDevices: [ACPIMMIODevice] = [], into memory: borrowing GuestMemory)
        throws(MachineError) -> ACPITables
    {
        let tables: ACPITables
        do { tables = try ACPITableBuilder.build(acpiConfiguration(vcpuCount: vcpuCount, mmioDevices: mmioDevices), at: acpiBase) } catch {
            throw .acpi(error)
        }
        do { try memory.write(tables.image, at: tables.base) } catch { throw .memory(error) }
        return tables
    }
}

/// The local APIC's register page as `KVM_GET_LAPIC` returns it.
enum LocalAPIC {
    static let lvtLINT0Offset = 0x350
    static let lvtLINT1Offset = 0x360
    /// Delivery mode field (bits 8-10) values.
    static let extINT: UInt32 = 0b111 << 8
    static let nmi: UInt32 = 0b100 << 8

    /// LINT0 delivers the PIC's interrupts (ExtINT) and LINT1 NMIs, as a PC's
    /// firmware leaves them (the MP specification's virtual-wire mode).
    static func wireLINTs(_ registers: [UInt8]) -> [UInt8] {
        var registers = registers
        for (offset, mode) in [(lvtLINT0Offset, extINT), (lvtLINT1Offset, nmi)] where offset + 4 <= registers.count {
            var value = UInt32(registers[offset]) | UInt32(registers[offset + 1]) << 8 | UInt32(registers[offset + 2]) << 16
            value |= UInt32(registers[offset + 3]) << 24
            value = (value & ~0x0001_0700) | mode  // unmask (bit 16), set the delivery mode
            for i in 0..<4 { registers[offset + i] = UInt8(truncatingIfNeeded: value >> (UInt32(i) * 8)) }
        }
        return registers
    }
}
