import ACPI
import Devices
import Firmware
import GuestMemory
import KVM
import Logging
import VMCore
import Virtio
import X86Boot

/// A virtual PC: guest RAM, the PC devices, one or more vCPUs, and a guest
/// loaded and ready to enter.
///
/// Built from a `MachineConfiguration` in a few steps (open KVM, create the
/// VM and its RAM, plug in the devices, load the guest, set the entry state),
/// then driven with `run()` or, one exit at a time, with `nextExit()` and
/// `dispatch(_:)`. Those drive vCPU 0, the bootstrap processor; with several
/// vCPUs the others (application processors) wait for the guest to start them
/// with INIT and SIPI, each on a thread of its own (started with the first
/// run), and whichever vCPU ends the machine ends it for all.
///
/// Its life: `pause()` and `resume()` from any thread; while it is paused
/// (or not running), `snapshot(to:)` saves it and `Machine.restore(from:)`
/// brings it back in this or another process.
public final class Machine {
    let kvm: KVMSystem
    let vm: KVMVirtualMachine
    /// Guest RAM. Declared after the VM so that a reader of the code sees the
    /// slots registered before and released after the mapping.
    public let memory: GuestMemory
    let devices: MachineDevices
    /// vCPU 0 first; the bootstrap processor's runner is driven by the caller
    /// of `run()`, the others run on threads of their own.
    let runners: [VCPURunner]
    let lifecycle = MachineLifecycle()
    /// What an attached debugger asked of the vCPUs (see `Debugging/`).
    let debugControl = DebugControl()
    /// What the machine is made of.
    public let hardware: MachineHardware
    /// Whether KVM logs the pages the guest writes (for `reset(to:)` and migration).
    public let trackDirtyPages: Bool
    /// What the guest was booted with, for a snapshot to carry.
    let bootRecord: BootRecord
    /// The specification (config file, flags) the machine was built from, if
    /// it was; a snapshot carries it, and a restored machine reports it.
    public var specification: MachineSpec?
    /// The deadline of the current `withDeadline`, read on the vCPU's thread.
    var activeDeadline: RunDeadline?
    var applicationProcessorsStarted = false
    /// The MSRs a snapshot saves, found once (`migratableMSRIndices()`).
    let msrIndexCache = ThreadLock<[UInt32]?>(nil)
    /// Whether a live migration of this machine runs (one at a time).
    let migrationInProgress = ThreadLock(false)

    /// Runs on the bootstrap processor's thread each time another thread kicked
    /// it (console input arrived, say), before the guest runs again.
    public var onKick: (() -> Void)?

    /// Where COM1's input comes from (the console), drained into the UART's
    /// receive FIFO as space frees up: on every kick and after every guest
    /// access to COM1 (the guest reading RBR makes room).
    public var serialInput: (any SerialInputSource)?

    public var ports: PortIOBus { devices.ports }
    public var mmio: MMIOBus { devices.mmio }
    /// COM1.
    public var serial: Serial16550 { devices.serial }
    public var serialOutput: any SerialOutput { devices.serialOutput }
    /// COM2 (IRQ 3 on the PC platform), writing to `MachineConfiguration.serial2Output` or nowhere.
    public var serial2: Serial16550 { devices.serial2 }
    public var postCodes: PostCodePort { devices.postCodes }
    /// The virtio devices' transports, in the order of `MachineConfiguration.virtioDevices`
    /// (their devices are `transport.device`), for statistics and tests.
    public var virtioTransports: [VirtioMMIOTransport] { devices.virtio?.transports ?? [] }
    public let dispatcher: ExitDispatcher
    /// Where the guest was loaded.
    public var image: LoadedImage { bootRecord.image }
    /// The mode the guest was entered in.
    public var mode: CPUMode { bootRecord.mode }
    public let logger: Logger

    /// The platform the machine was built as.
    public var platform: MachineConfiguration.Platform { hardware.platform }
    /// The ACPI tables, on the PC platform.
    public var acpiTables: ACPITables? { bootRecord.acpiTables }
    /// The Intel MP table, on the PC platform.
    public var mpTable: MPTable? { bootRecord.mpTable }
    /// How many vCPUs the machine has.
    public var vcpuCount: Int { runners.count }
    var bootstrap: VCPURunner { runners[0] }
    var applicationProcessors: ArraySlice<VCPURunner> { runners.dropFirst() }

    /// The number of VM exits so far, of every vCPU; a counter on the machine, not a global.
    public var exitCount: Int { runners.reduce(0) { $0 &+ $1.exitCount } }
    /// How many instructions KVM could not run and the VMM carried out (see `InstructionAssist`).
    public var assistedInstructions: Int { runners.reduce(0) { $0 + $1.assistedInstructions } }

    /// Builds the machine and boots `configuration.guest` into it.
    /// With `trackDirtyPages`, KVM logs the pages the guest writes (for diff snapshots).
    public convenience init(_ configuration: MachineConfiguration, trackDirtyPages: Bool = false) throws(MachineError) {
        try self.init(
            hardware: configuration.hardware, io: configuration.io, memory: nil,
            contents: .boot(configuration.guest), trackDirtyPages: trackDirtyPages)
    }

    /// What goes into a new machine's RAM and vCPUs.
    enum Contents {
        /// A guest to load and enter.
        case boot(MachineConfiguration.Guest)
        /// Nothing: RAM and state come from a snapshot (`restore`).
        case restore(BootRecord)
    }

    /// The recipe every machine is built by: KVM and the VM, RAM, vCPUs,
    /// devices; then either the guest loaded and its entry state set, or
    /// nothing, for a snapshot's state to go into.
    init(
        hardware: MachineHardware, io: MachineIO, memory providedMemory: consuming GuestMemory?, contents: Contents,
        trackDirtyPages: Bool = false
    ) throws(MachineError) {
        logger = io.logger
        self.trackDirtyPages = trackDirtyPages
        self.hardware = hardware
        let platform = hardware.platform
        let size = hardware.memorySize
        guard size >= MachineConfiguration.minimumMemorySize, size % GuestMemory.pageSize == 0 else {
            throw .invalidMemorySize(size, minimum: MachineConfiguration.minimumMemorySize)
        }
        let vcpuCount = hardware.vcpuCount
        if vcpuCount > 1, platform != .pc { throw .multipleVCPUsNeedPCPlatform(vcpuCount) }
        var hidden = try hardware.resolvedHiddenFeatures()
        if vcpuCount > 1, !HypercallProbe.hypercallsComplete {
            let added = HypercallProbe.featuresNeedingHypercalls.compactMap(CPUIDFeature.named).filter { !hidden.contains($0) }
            hidden += added
            logger.debug(
                "this host never completes a guest's vmcall: hiding \(added.map(\.name).joined(separator: ", ")) from the guest's CPUID")
        }
        do throws(KVMError) {
            kvm = try KVMSystem()
            if try kvm.checkExtension(.userMemory) == 0 { throw .missingCapability("KVM_CAP_USER_MEMORY") }
            vm = try kvm.createVM()
            try PlatformSetup.prepareVM(vm, kvm: kvm, platform: platform)
        } catch { throw .kvm(error) }
        if let providedMemory {
            memory = providedMemory
        } else {
            let layout = PlatformSetup.ramLayout(size: size, platform: platform)
            do {
                memory = try hardware.memoryBacking == .memfd ? GuestMemory(sharedRegions: layout) : GuestMemory(regions: layout)
            } catch { throw .memory(error) }
        }
        // KVM's dirty log sees only the guest's writes; the VMM's own go in
        // GuestMemory's log, so that a reset misses neither.
        if trackDirtyPages { memory.trackHostWrites() }
        let maximumVCPUs: Int
        do {
            try vm.mapRAM(memory, logDirtyPages: trackDirtyPages)
            maximumVCPUs = min(MachineConfiguration.maximumVCPUCount, max(1, Int(try kvm.checkExtension(.maxVCPUs))))
        } catch { throw .kvm(error) }
        guard (1...maximumVCPUs).contains(vcpuCount) else { throw .invalidVCPUCount(vcpuCount, maximum: maximumVCPUs) }

        devices = try MachineDevices(io: io, hardware: hardware, vm: vm, memory: memory.view)
        dispatcher = ExitDispatcher(ports: devices.ports, mmio: devices.mmio, logger: logger)
        // The bus lock only when other vCPUs may be using the devices: a single
        // vCPU's exit path takes no lock at all.
        var policy = ExitPolicy(
            dispatcher: dispatcher, platform: platform, busLock: vcpuCount > 1 ? lifecycle.busLock : nil, debug: debugControl,
            lifecycle: lifecycle)
        do {
            // Every vCPU gets the same leaf 7 (only APIC ids differ).
            let cpuid = CPUIDConfiguration.entries(supported: try kvm.supportedCPUID(), vcpuID: 0, hiding: hidden)
            let leaf7 = cpuid.first { $0.function == 7 && $0.index == 0 }
            policy.guestHasINVPCID = (leaf7?.ebx ?? 0) & 1 << 10 != 0
            policy.assistContext = AssistContext(memory: memory.view, xsaveLayout: XSAVELayout(cpuid: cpuid))
        } catch { throw .kvm(error) }
        var runners: [VCPURunner] = []
        let wakeBootstrapProcessor = WakeBox()
        for id in 0..<UInt32(vcpuCount) {
            do {
                let vcpu = try vm.createVCPU(id: id)
                try PlatformSetup.prepareVCPU(vcpu, id: id, count: UInt32(vcpuCount), kvm: kvm, platform: platform, hiding: hidden)
                // KVM creates application processors waiting for SIPI when the
                // irqchip is in the kernel; make sure, as QEMU does.
                if id > 0, try vcpu.mpState() != .uninitialized { try vcpu.setMPState(.uninitialized) }
                runners.append(
                    VCPURunner(
                        id: id, vcpu: vcpu, policy: policy, lifecycle: lifecycle,
                        wakeBootstrapProcessor: { [wakeBootstrapProcessor] in wakeBootstrapProcessor.handle?.kick() }))
            } catch { throw .kvm(error) }
        }
        wakeBootstrapProcessor.handle = runners[0].handle
        self.runners = runners

        switch contents {
        case .boot(let guest):
            bootRecord = try Self.boot(guest, hardware: hardware, memory: memory, devices: devices, vcpu: runners[0].vcpu)
        case .restore(let record):
            bootRecord = record
            if platform == .pc, let contents = record.firmwareConfig { try devices.plug(contents.device()) }
        }
        debugControl.readPhysical = { [weak self] address, count in
            try? self?.memory.read(count: count, at: GuestAddress(address))
        }
        logger.debug(
            "guest at \(hex(bootRecord.image.lowestAddress))..<\(hex(bootRecord.image.endAddress)), entered in \(bootRecord.mode) mode at \(hex(bootRecord.image.entry))"
        )
    }

    /// Writes the firmware tables, plugs in fw_cfg, loads the guest and sets
    /// the bootstrap processor's entry state.
    private static func boot(
        _ guest: MachineConfiguration.Guest, hardware: MachineHardware, memory: borrowing GuestMemory, devices: MachineDevices,
        vcpu: borrowing KVMVCPU
    ) throws(MachineError) -> BootRecord {
        let pc = hardware.platform == .pc
        var guest = guest
        if let virtio = devices.virtio { guest = guest.appendingKernelArguments(virtio.kernelArguments) }
        let acpiTables =
            pc
            ? try PlatformSetup.writeACPITables(
                vcpuCount: hardware.vcpuCount, mmioDevices: devices.virtio?.acpiDevices ?? [], into: memory) : nil
        let mpTable = pc ? try PlatformSetup.writeMPTable(vcpuCount: hardware.vcpuCount, into: memory) : nil
        // The firmware tables besides ACPI's that the memory map must reserve.
        let reserved = mpTable.map { [E820Entry(address: $0.base.rawValue, size: $0.size, type: .reserved)] } ?? []
        var firmwareConfig: FirmwareConfigContents?
        if pc {
            let contents = try PlatformSetup.firmwareConfigContents(
                guest: guest, cpuCount: hardware.vcpuCount, acpi: acpiTables, reserving: reserved, memory: memory)
            try devices.plug(contents.device())
            firmwareConfig = contents
        }
        let loaded: GuestLoader.Loaded
        do throws(BootError) { loaded = try GuestLoader.load(guest, acpi: acpiTables, reserving: reserved, into: memory) } catch {
            throw .boot(error)
        }
        do {
            try vcpu.setSpecialRegisters(loaded.entryState.specialRegisters)
            try vcpu.setRegisters(loaded.entryState.registers)
        } catch { throw .kvm(error) }
        return BootRecord(
            mode: loaded.mode, image: loaded.image, acpiTables: acpiTables, mpTable: mpTable, firmwareConfig: firmwareConfig)
    }

    deinit { stopApplicationProcessors() }

    // MARK: The bootstrap processor, for callers that drive it themselves

    /// Answers the pending `ioIn` or `mmioRead` exit with `data`.
    public func completeRead(_ data: IOData) { bootstrap.vcpu.completeRead(data) }

    public func registers() throws(MachineError) -> Registers {
        do { return try bootstrap.vcpu.registers() } catch { throw .kvm(error) }
    }

    public func setRegisters(_ registers: Registers) throws(MachineError) {
        do { try bootstrap.vcpu.setRegisters(registers) } catch { throw .kvm(error) }
    }

    public func specialRegisters() throws(MachineError) -> SpecialRegisters {
        do { return try bootstrap.vcpu.specialRegisters() } catch { throw .kvm(error) }
    }

    public func setSpecialRegisters(_ registers: SpecialRegisters) throws(MachineError) {
        do { try bootstrap.vcpu.setSpecialRegisters(registers) } catch { throw .kvm(error) }
    }

    public func msrs(_ indices: [UInt32]) throws(MachineError) -> [UInt32: UInt64] {
        do { return try bootstrap.vcpu.msrs(indices) } catch { throw .kvm(error) }
    }

    public func setMSRs(_ msrs: [(index: UInt32, value: UInt64)]) throws(MachineError) {
        do { try bootstrap.vcpu.setMSRs(msrs) } catch { throw .kvm(error) }
    }

    /// Turns single-stepping, software breakpoints (`int3` exits to the VMM
    /// instead of reaching the guest's own handler) and up to four hardware
    /// instruction breakpoints on or off; hits come back as `.debug` exits.
    public func setGuestDebug(singleStep: Bool, softwareBreakpoints: Bool, hardwareBreakpoints: [UInt64]) throws(MachineError) {
        do {
            try bootstrap.vcpu.setGuestDebug(
                singleStep: singleStep, softwareBreakpoints: softwareBreakpoints, hardwareBreakpoints: hardwareBreakpoints)
        } catch { throw .kvm(error) }
    }

    /// A handle another thread may use to make the bootstrap processor stop (see `VCPUKicker`).
    public var kicker: VCPUKicker { bootstrap.vcpu.kicker }

    /// RIP, the general registers, control registers and segments, for a
    /// report after the guest failed: of the vCPU that ended the machine.
    /// Never throws: what cannot be read says so.
    public func cpuStateReport() -> String {
        if let stop = lifecycle.recordedStop, stop.vcpu != 0 || stop.outcome.isFailure { return "vCPU \(stop.vcpu):\n\(stop.report)" }
        return bootstrap.stateReport()
    }

    /// The multiprocessing state of each application processor, before the
    /// first run (their threads own them after).
    func applicationProcessorMPStates() throws(MachineError) -> [MPState] {
        var states: [MPState] = []
        for runner in applicationProcessors {
            precondition(!runner.started, "the vCPU belongs to its thread")
            do { states.append(try runner.vcpu.mpState()) } catch { throw .kvm(error) }
        }
        return states
    }
}

/// Lets the runners kick the bootstrap processor, which is created after them.
private final class WakeBox: @unchecked Sendable {
    // Unchecked: set once, before any runner's thread starts.
    var handle: VCPUHandle?
}

extension Result where Failure == MachineError, Success == StopReason {
    fileprivate var isFailure: Bool {
        switch self {
        case .success(let reason): return reason.isFailure
        case .failure: return true
        }
    }
}
