import ACPI
import Firmware
import GuestMemory
import VMCore
import X86Boot

/// Puts a guest into memory and says how to enter it.
enum GuestLoader {
    struct Loaded {
        var mode: CPUMode
        var image: LoadedImage
        var entryState: EntryState
    }

    /// Loads `guest`; a Linux guest's memory map marks the ACPI tables and the
    /// `reserving` ranges (the MP table) as not RAM.
    static func load(
        _ guest: MachineConfiguration.Guest, acpi: ACPITables?, reserving reserved: [E820Entry] = [], into memory: borrowing GuestMemory
    ) throws(BootError) -> Loaded {
        switch guest {
        case .flat(let bytes, let mode, let loadAddress, let entry):
            let address = loadAddress ?? (mode == .real ? X86Layout.defaultRealModeLoadAddress : X86Layout.defaultLoadAddress)
            let image = try FlatImage.load(bytes, at: address, entry: entry, mode: mode, into: memory)
            let occupied = [image.lowestAddress..<image.endAddress]
            return Loaded(mode: mode, image: image, entryState: try entryState(mode, image, occupied: occupied, memory))
        case .elf(let bytes):
            let elf = try ELF64Image(parsing: bytes)
            let image = try elf.load(mode: .long, into: memory)
            let occupied = elf.segments.map { $0.physicalAddress..<$0.physicalAddress + $0.memorySize }
            return Loaded(mode: .long, image: image, entryState: try entryState(.long, image, occupied: occupied, memory))
        case .firmware(let firmware):
            switch firmware.format {
            case .flat:
                return try load(
                    .flat(bytes: firmware.bytes, mode: firmware.mode, loadAddress: firmware.loadAddress), acpi: acpi, into: memory)
            case .elf: return try load(.elf(bytes: firmware.bytes), acpi: acpi, into: memory)
            case .multiboot: return try load(.multiboot(kernel: firmware.bytes, name: firmware.name), acpi: acpi, into: memory)
            }
        case .linux(let kernel, let initrd, let commandLine):
            return try loadLinux(kernel: kernel, initrd: initrd, commandLine: commandLine, acpi: acpi, reserving: reserved, into: memory)
        case .multiboot(let kernel, let name, let modules, let commandLine):
            return try loadMultiboot(
                kernel: kernel, name: name, modules: modules, commandLine: commandLine, acpi: acpi, reserving: reserved, into: memory)
        }
    }

    /// The memory map every guest that asks is told about (Linux's e820,
    /// Multiboot's memory map, fw_cfg's `etc/e820`): RAM, the legacy hole, the
    /// ACPI tables and the other firmware tables in `firmwareTables`.
    static func memoryMap(
        acpi: ACPITables?, reserving firmwareTables: [E820Entry], memory: borrowing GuestMemory
    ) throws(BootError) -> E820Map {
        let reserved = (acpi.map { [E820Entry(address: $0.base.rawValue, size: $0.size, type: .acpi)] } ?? []) + firmwareTables
        return try E820Map(guestRAM: memory.ranges, reserved: reserved)
    }

    /// A Multiboot kernel: 32-bit protected mode, paging off, flat segments,
    /// EAX = 0x2BADB002, EBX = the information structure.
    static func loadMultiboot(
        kernel: [UInt8], name: String, modules: [MultibootModule], commandLine: String, acpi: ACPITables?,
        reserving firmwareTables: [E820Entry], into memory: borrowing GuestMemory
    ) throws(BootError) -> Loaded {
        let image = try MultibootKernel(parsing: kernel)
        let plan = try image.load(
            commandLine: commandLine.isEmpty ? name : name + " " + commandLine, modules: modules,
            memoryMap: try memoryMap(acpi: acpi, reserving: firmwareTables, memory: memory), into: memory)
        var state = try CPUSetup.protectedMode(entry: plan.entry.rawValue, stackTop: plan.stackTop.rawValue, memory: memory, gdt: plan.gdt)
        state.registers.rax = UInt64(MultibootInfo.bootloaderMagic)
        state.registers.rbx = plan.info.rawValue
        let loaded = LoadedImage(entry: plan.entry.rawValue, lowestAddress: plan.kernelStart.rawValue, endAddress: plan.kernelEnd.rawValue)
        return Loaded(mode: .protected, image: loaded, entryState: state)
    }

    /// Real mode keeps the stack just below the image; the other modes get
    /// their GDT, page tables and stack in RAM the image leaves free
    /// (`BootStructures.place`), at the usual addresses when it can.
    static func entryState(
        _ mode: CPUMode, _ image: LoadedImage, occupied: [Range<UInt64>], _ memory: borrowing GuestMemory
    ) throws(BootError) -> EntryState {
        guard mode != .real else { return try CPUSetup.realMode(entry: image.entry, stackTop: image.lowestAddress) }
        let ram = memory.ranges.map { $0.base.rawValue..<$0.base.rawValue + $0.size }
        let structures = try BootStructures.place(mode: mode, occupied: occupied, available: ram, stackBelow: image.lowestAddress)
        return try CPUSetup.entryState(mode: mode, entry: image.entry, structures: structures, memory: memory)
    }

    /// A bzImage through the 64-bit boot protocol, or an ELF `vmlinux` through
    /// its PVH entry; the format is told by the ELF magic.
    static func loadLinux(
        kernel: [UInt8], initrd: [UInt8]?, commandLine text: String, acpi: ACPITables?, reserving firmwareTables: [E820Entry] = [],
        into memory: borrowing GuestMemory
    ) throws(BootError) -> Loaded {
        let memoryMap = try memoryMap(acpi: acpi, reserving: firmwareTables, memory: memory)
        if ELF64Image.hasMagic(kernel) {
            let pvh = try PVHImage(parsing: kernel)
            let commandLine = try KernelCommandLine(text)
            let plan = try pvh.load(
                commandLine: commandLine, initrd: initrd, memoryMap: memoryMap, acpiRSDP: acpi?.rsdpAddress, into: memory)
            // PVH: 32-bit protected mode, paging off, flat segments, EBX = hvm_start_info.
            var state = try CPUSetup.protectedMode(
                entry: plan.entry32.rawValue, stackTop: LinuxLayout.bootStackTop.rawValue, memory: memory)
            state.registers.rbx = plan.startInfo.rawValue
            let image = LoadedImage(
                entry: plan.entry32.rawValue, lowestAddress: plan.kernelStart.rawValue, endAddress: plan.kernelEnd.rawValue)
            return Loaded(mode: .protected, image: image, entryState: state)
        }
        let loader = try LinuxBootLoader(bzImage: kernel)
        let commandLine = try KernelCommandLine(text, capacity: Int(loader.header.commandLineSize))
        let plan = try loader.load(
            commandLine: commandLine, initrd: initrd, memoryMap: memoryMap, acpiRSDP: acpi?.rsdpAddress, into: memory)
        // The 64-bit boot protocol: long mode, identity-mapped, RSI = boot_params.
        var state = try CPUSetup.longMode(entry: plan.entry64.rawValue, stackTop: plan.stackTop.rawValue, memory: memory)
        state.registers.rsi = plan.zeroPage.rawValue
        let image = LoadedImage(
            entry: plan.entry64.rawValue, lowestAddress: plan.kernelAddress.rawValue,
            endAddress: plan.kernelAddress.rawValue + plan.kernelSize)
        return Loaded(mode: .long, image: image, entryState: state)
    }
}
