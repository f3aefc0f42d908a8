import ACPI
import Devices
import Firmware
import GuestMemory
import KVM
import Logging
import Synchronization
import VMCore
import X86Boot

#if canImport(Glibc)
    import Glibc
#endif

/// A virtual PC: guest RAM, the PC devices, one or more vCPUs, and a guest
/// loaded and ready to enter.
///
/// Built from a `MachineConfiguration` in a few steps (open KVM, create the
/// VM and its RAM, plug in the devices, load the guest, set the entry state),
/// then driven with `run()` or, one exit at a time, with `nextExit()` and
/// `dispatch(_:)`. Those drive vCPU 0, the bootstrap processor; with several
/// vCPUs the others (application processors) wait for the guest to start them
/// with INIT and SIPI, each on a thread of its own (started with the first
/// run) with the default dispatch, and whichever vCPU ends the machine ends it
/// for all.
public final class Machine {
    private let kvm: KVMSystem
    private let vm: KVMVirtualMachine
    private var vcpu: KVMVCPU
    /// Guest RAM. Declared after the VM so that a reader of the code sees the
    /// slots registered before and released after the mapping.
    public let memory: GuestMemory
    public let ports = PortIOBus()
    public let mmio = MMIOBus()
    /// COM1.
    public let serial: Serial16550
    public let serialOutput: any SerialOutput
    /// COM2 (IRQ 3 on the PC platform), writing to `MachineConfiguration.serial2Output` or nowhere.
    public let serial2: Serial16550
    /// COM2's and the debug console's sinks, flushed whenever COM1's is.
    private let otherOutputs: [any SerialOutput]
    public let postCodes = PostCodePort()
    public private(set) var dispatcher: ExitDispatcher
    /// Where the guest was loaded.
    public let image: LoadedImage
    /// The mode the guest was entered in.
    public let mode: CPUMode
    public let logger: Logger
    /// The number of VM exits so far; a counter on the machine, not a global.
    public private(set) var exitCount = 0

    /// The platform the machine was built as.
    public let platform: MachineConfiguration.Platform
    /// The ACPI tables, on the PC platform.
    public let acpiTables: ACPITables?
    /// The Intel MP table, on the PC platform.
    public let mpTable: MPTable?
    /// How many vCPUs the machine has.
    public var vcpuCount: Int { applicationProcessors.count + 1 }

    /// vCPUs 1, 2, ...; empty on a one-vCPU machine, whose exit path then
    /// takes no lock at all.
    private let applicationProcessors: [ApplicationProcessor]
    private let group = VCPUGroup()

    public init(_ configuration: MachineConfiguration) throws(MachineError) {
        logger = configuration.logger
        platform = configuration.resolvedPlatform
        let size = configuration.memorySize
        guard size >= MachineConfiguration.minimumMemorySize, size % GuestMemory.pageSize == 0 else {
            throw .invalidMemorySize(size, minimum: MachineConfiguration.minimumMemorySize)
        }
        do throws(KVMError) {
            kvm = try KVMSystem()
            if try kvm.checkExtension(.userMemory) == 0 { throw .missingCapability("KVM_CAP_USER_MEMORY") }
            vm = try kvm.createVM()
            try PlatformSetup.prepareVM(vm, kvm: kvm, platform: platform)
        } catch { throw .kvm(error) }
        do { memory = try GuestMemory(regions: PlatformSetup.ramLayout(size: size, platform: platform)) } catch { throw .memory(error) }
        let vcpuCount = configuration.vcpuCount
        if vcpuCount > 1, platform != .pc { throw .multipleVCPUsNeedPCPlatform(vcpuCount) }
        let maximumVCPUs: Int
        do {
            for (slot, mapping) in memory.hostMappings.enumerated() {
                try vm.setUserMemoryRegion(
                    slot: UInt32(slot), guestAddress: mapping.guestBase, size: mapping.size, hostAddress: mapping.hostAddress)
            }
            maximumVCPUs = min(MachineConfiguration.maximumVCPUCount, max(1, Int(try kvm.checkExtension(.maxVCPUs))))
        } catch { throw .kvm(error) }
        guard (1...maximumVCPUs).contains(vcpuCount) else { throw .invalidVCPUCount(vcpuCount, maximum: maximumVCPUs) }
        let hidden = configuration.hiddenCPUFeatures
        do {
            // The bootstrap processor first, then the application processors.
            vcpu = try vm.createVCPU(id: 0)
            try PlatformSetup.prepareVCPU(vcpu, id: 0, count: UInt32(vcpuCount), kvm: kvm, platform: platform, hiding: hidden)
        } catch { throw .kvm(error) }
        let dispatcher = ExitDispatcher(ports: ports, mmio: mmio, logger: logger)
        var applicationProcessors: [ApplicationProcessor] = []
        let wakeBootstrapProcessor: @Sendable () -> Void = { [control, kicker = vcpu.kicker] in control.kick(kicker) }
        for id in 1..<UInt32(vcpuCount) {
            do {
                let created = try vm.createVCPU(id: id)
                try PlatformSetup.prepareVCPU(created, id: id, count: UInt32(vcpuCount), kvm: kvm, platform: platform, hiding: hidden)
                // KVM creates application processors waiting for SIPI when the
                // irqchip is in the kernel; make sure, as QEMU does.
                if try created.mpState() != ApplicationProcessor.waitForSIPI { try created.setMPState(ApplicationProcessor.waitForSIPI) }
                applicationProcessors.append(
                    ApplicationProcessor(
                        id: id, vcpu: created, dispatcher: dispatcher, group: group, wakeBootstrapProcessor: wakeBootstrapProcessor))
            } catch { throw .kvm(error) }
        }
        self.applicationProcessors = applicationProcessors

        serialOutput = configuration.serialOutput ?? FileSerialOutput.standardOutput()
        serial = Serial16550(output: serialOutput, interrupt: platform == .pc ? vm.interruptLine(PortMap.com1.irq) : nil)
        let serial2Output = configuration.serial2Output ?? DiscardingSerialOutput()
        serial2 = Serial16550(output: serial2Output, interrupt: platform == .pc ? vm.interruptLine(PortMap.com2.irq) : nil)
        otherOutputs = [serial2Output] + (configuration.debugConsoleOutput.map { [$0] } ?? [])
        do {
            try ports.register(serial, at: PortMap.com1.base, length: PortMap.com1.length)
            try ports.register(serial2, at: PortMap.com2.base, length: PortMap.com2.length)
            if let debugConsole = configuration.debugConsoleOutput {
                try ports.register(
                    DebugConsolePort(output: debugConsole), at: PortMap.debugConsole.base, length: PortMap.debugConsole.length)
            }
            try ports.register(postCodes, at: PortMap.postCode.base, length: PortMap.postCode.length)
            try ports.register(DebugExitPort(), at: PortMap.debugExit.base, length: PortMap.debugExit.length)
            if platform == .pc { try PlatformSetup.addPCDevices(to: ports, vm: vm, memorySize: size) }
        } catch { throw .bus(error) }
        self.dispatcher = dispatcher

        acpiTables = platform == .pc ? try PlatformSetup.writeACPITables(vcpuCount: vcpuCount, into: memory) : nil
        mpTable = platform == .pc ? try PlatformSetup.writeMPTable(vcpuCount: vcpuCount, into: memory) : nil
        // The firmware tables besides ACPI's that the memory map must reserve.
        let reserved = mpTable.map { [E820Entry(address: $0.base.rawValue, size: $0.size, type: .reserved)] } ?? []
        if platform == .pc {
            let firmwareConfig = try PlatformSetup.firmwareConfig(
                guest: configuration.guest, cpuCount: vcpuCount, acpi: acpiTables, reserving: reserved, memory: memory)
            do { try ports.register(firmwareConfig, at: PortMap.firmwareConfig.base, length: PortMap.firmwareConfig.length) } catch {
                throw .bus(error)
            }
        }
        let entryState: EntryState
        do {
            let loaded = try GuestLoader.load(configuration.guest, acpi: acpiTables, reserving: reserved, into: memory)
            (mode, image, entryState) = (loaded.mode, loaded.image, loaded.entryState)
        } catch { throw .boot(error) }
        do {
            try vcpu.setSpecialRegisters(entryState.specialRegisters)
            try vcpu.setRegisters(entryState.registers)
        } catch { throw .kvm(error) }
        logger.debug("guest loaded at \(hex(image.lowestAddress))..<\(hex(image.endAddress)), entering \(mode) mode at \(hex(image.entry))")
    }

    /// Runs the guest until it stops, dispatching every exit to the devices.
    ///
    /// Per exit this does the `KVM_RUN` ioctl and the dispatch, nothing else:
    /// no allocation and no other system call for port and MMIO accesses.
    /// With a `timeout`, a guest still running when it passes is stopped
    /// (`.deadlineExpired`); without one, the guest may run forever.
    public func run(timeout: Duration? = nil) throws(MachineError) -> StopReason {
        defer {
            serialOutput.flush()
            for output in otherOutputs { output.flush() }
        }
        guard let timeout else { return try runLoop() }
        return try withDeadline(timeout) { () throws(MachineError) -> StopReason in try runLoop() }
    }

    /// Runs the guest like `run(timeout:)`, but on a thread of its own (the
    /// vCPU thread), while the calling thread waits for it: the caller stays
    /// free of `KVM_RUN` and its signal, and a stop request from any thread
    /// (`remote.requestStop()`) ends the run cleanly.
    public func runOnVCPUThread(timeout: Duration? = nil) throws(MachineError) -> StopReason {
        // The calling thread only waits while the vCPU thread uses the machine,
        // so the machine is never used from two threads at once.
        final class Job: @unchecked Sendable {
            let machine: Machine
            let timeout: Duration?
            var result: Result<StopReason, MachineError> = .success(.interrupted)
            init(machine: Machine, timeout: Duration?) {
                self.machine = machine
                self.timeout = timeout
            }
            func run() { result = Result { () throws(MachineError) -> StopReason in try machine.run(timeout: timeout) } }
        }
        let job = Job(machine: self, timeout: timeout)
        var thread = pthread_t()
        let context = Unmanaged.passRetained(job).toOpaque()
        let created = pthread_create(
            &thread, nil,
            { context in
                guard let context else { return nil }
                Unmanaged<Job>.fromOpaque(context).takeRetainedValue().run()
                return nil
            }, context)
        guard created == 0 else {
            Unmanaged<Job>.fromOpaque(context).release()
            return try run(timeout: timeout)  // no thread to be had: run here
        }
        pthread_join(thread, nil)
        return try job.result.get()
    }

    private func runLoop() throws(MachineError) -> StopReason {
        let attached = control.attach(thread: pthread_self())
        defer {
            // Every way out of the run (a stop, a thrown error) ends the application processors.
            stopApplicationProcessors()
            if attached { control.detach() }
        }
        // On a PC, look in on the vCPU a few times a second so that a guest
        // halted for good (which KVM keeps to itself) ends the run.
        let probe =
            platform == .pc ? PeriodicKick(every: .milliseconds(200)) { [control, kicker = vcpu.kicker] in control.kick(kicker) } : nil
        defer { probe?.stop() }
        while true {
            let exit = try nextExit()
            if let reason = try dispatch(exit) { return reason }
            if serialInput != nil, case .ioIn(PortMap.com1.base...PortMap.com1.base + 7, _, _) = exit { withBuses { drainSerialInput() } }
        }
    }

    private var activeDeadline: RunDeadline?

    /// Runs `body`, which drives this machine's vCPU on the calling thread, with
    /// a deadline: once `timeout` has passed, the vCPU's current or next
    /// `KVM_RUN` returns at once (`nextExit()` gives `.interrupted`, and
    /// `dispatch` turns it into `.deadlineExpired`). Deadlines do not nest.
    public func withDeadline<R, E: Error>(_ timeout: Duration, _ body: () throws(E) -> R) throws(E) -> R {
        let deadline = RunDeadline(after: timeout, kicker: vcpu.kicker)
        activeDeadline = deadline
        // An application processor that ends the machine must be able to kick
        // this thread out of KVM_RUN (`run()` attaches it too).
        let attached = !applicationProcessors.isEmpty && control.attach(thread: pthread_self())
        defer {
            if attached { control.detach() }
            activeDeadline = nil
            // A kick that landed after the guest had stopped anyway must not
            // interrupt the next run.
            if deadline.disarm() { vcpu.clearExitRequest() }
        }
        return try body()
    }

    /// Whether the current `withDeadline` has expired.
    public var deadlineHasExpired: Bool { activeDeadline?.hasFired ?? false }

    /// Runs the guest until its next exit and returns it, undispatched.
    public func nextExit() throws(MachineError) -> VMExit {
        exitCount &+= 1
        if !applicationProcessorsStarted, !applicationProcessors.isEmpty { startApplicationProcessors() }
        do { return try vcpu.run() } catch { throw .kvm(error) }
    }

    /// Handles `exit` as `run()` would: answers reads, and returns why the
    /// machine must stop, or `nil` to go on.
    public func dispatch(_ exit: VMExit) throws(MachineError) -> StopReason? {
        guard let reason = try dispatchOnBootstrapProcessor(exit) else { return nil }
        stopApplicationProcessors()
        return reason
    }

    private func dispatchOnBootstrapProcessor(_ exit: VMExit) throws(MachineError) -> StopReason? {
        let action = applicationProcessors.isEmpty ? dispatcher.handle(exit) : group.busLock.withLock { _ in dispatcher.handle(exit) }
        switch action {
        case .resume:
            return nil
        case .completeRead(let data):
            vcpu.completeRead(data)
            return nil
        case .halt:
            // HLT reaches the VMM only without an in-kernel irqchip, where no
            // device raises interrupts: a halted CPU stays halted whatever
            // RFLAGS.IF says; report which it was.
            return .halted(interruptsEnabled: try registers().interruptsEnabled)
        case .stop(.interrupted):
            return try handleKick()
        case .stop(.internalError(1, let data)) where platform == .pc:
            guard let assist = InstructionAssist(emulationFailure: data) else { return .internalError(suberror: 1, data: data) }
            try perform(assist)
            return nil
        case .stop(let reason):
            return reason
        }
    }

    // MARK: Kicks from other threads

    private let control = MachineControl()

    /// Runs on the vCPU thread, each time another thread kicked it (console
    /// input arrived, say), before the guest runs again.
    public var onKick: (() -> Void)?

    /// Makes the vCPU leave `KVM_RUN` soon and run `onKick`; safe from any thread.
    public func kick() { remote.kick() }

    /// Makes `run()` return `.stopRequested`; safe from any thread.
    public func requestStop() { remote.requestStop() }

    /// A handle other threads (a console reader, a signal handler's helper)
    /// use to kick or stop this machine.
    public var remote: MachineRemote { MachineRemote(control: control, kicker: vcpu.kicker) }

    /// Where COM1's input comes from (the console), drained into the UART's
    /// receive FIFO as space frees up: on every kick and after every guest
    /// access to COM1 (the guest reading RBR makes room).
    public var serialInput: (any SerialInputSource)?

    private func drainSerialInput() {
        guard let source = serialInput, source.hasPendingInput else { return }
        let space = serial.inputSpace
        guard space > 0 else { return }
        _ = serial.enqueueInput(source.takeInput(max: space))
    }

    /// Why the vCPU was interrupted, and what follows.
    private func handleKick() throws(MachineError) -> StopReason? {
        if deadlineHasExpired { return .deadlineExpired }
        if control.stopRequested.load(ordering: .sequentiallyConsistent) { return .stopRequested }
        if let stop = group.takeStop() {
            logger.debug("vCPU \(stop.vcpu) ended the machine")
            return try stop.outcome.get()
        }
        withBuses {
            drainSerialInput()
            serialOutput.flush()
        }
        onKick?()
        // With an in-kernel irqchip, HLT never comes back to the VMM: a guest
        // that halts with interrupts off (Linux's `halt`) just sleeps in KVM.
        // The idle probe's periodic kicks find it here.
        if platform == .pc, try isHaltedWithInterruptsOff() { return .halted(interruptsEnabled: false) }
        return nil
    }

    /// KVM_MP_STATE_HALTED with RFLAGS.IF clear: only an NMI could wake it, and no device sends one.
    private func isHaltedWithInterruptsOff() throws(MachineError) -> Bool {
        let halted: Bool
        do { halted = try vcpu.mpState() == .halted } catch { throw .kvm(error) }
        guard halted else { return false }
        return try !registers().interruptsEnabled
    }

    /// How many instructions KVM could not run and the VMM carried out (see `InstructionAssist`).
    public private(set) var assistedInstructions = 0

    /// Carries out an instruction KVM could not, as the CPU would, and moves RIP past it.
    private func perform(_ assist: InstructionAssist) throws(MachineError) {
        do { try assist.perform(on: vcpu) } catch { throw .kvm(error) }
        assistedInstructions += 1
        logger.debug("carried out \(assist) for the guest")
    }

    // MARK: Application processors

    private var applicationProcessorsStarted = false

    /// Starts a thread for each application processor; each sleeps in KVM
    /// until the guest sends its vCPU INIT and SIPI.
    private func startApplicationProcessors() {
        applicationProcessorsStarted = true
        for processor in applicationProcessors where !processor.start() {
            logger.error("no thread for vCPU \(processor.id): the guest cannot start it")
        }
    }

    /// Ends every application processor's thread and waits for it: sets the
    /// group's `stopping`, then kicks each vCPU out of `KVM_RUN` (or its wait
    /// for SIPI). Their exits join the machine's count. Idempotent.
    private func stopApplicationProcessors() {
        guard applicationProcessorsStarted else { return }
        applicationProcessorsStarted = false
        group.stopping.store(true, ordering: .releasing)
        for processor in applicationProcessors { processor.kick() }
        for processor in applicationProcessors where processor.started {
            processor.join()
            exitCount &+= processor.exitCount
        }
    }

    /// The multiprocessing state (`KVM_MP_STATE_*`) of each application
    /// processor, before the first run (their threads own them after).
    func applicationProcessorMPStates() throws(MachineError) -> [UInt32] {
        var states: [UInt32] = []
        for processor in applicationProcessors {
            do { states.append(try processor.mpState().rawValue) } catch { throw .kvm(error) }
        }
        return states
    }

    /// Runs `body` holding the bus lock when other vCPUs may be using the devices.
    private func withBuses(_ body: () -> Void) {
        if applicationProcessors.isEmpty { body() } else { group.busLock.withLock { _ in body() } }
    }

    deinit { stopApplicationProcessors() }

    /// Answers the pending `ioIn` or `mmioRead` exit with `data`.
    public func completeRead(_ data: IOData) { vcpu.completeRead(data) }

    public func registers() throws(MachineError) -> Registers {
        do { return try vcpu.registers() } catch { throw .kvm(error) }
    }

    public func setRegisters(_ registers: Registers) throws(MachineError) {
        do { try vcpu.setRegisters(registers) } catch { throw .kvm(error) }
    }

    public func specialRegisters() throws(MachineError) -> SpecialRegisters {
        do { return try vcpu.specialRegisters() } catch { throw .kvm(error) }
    }

    public func setSpecialRegisters(_ registers: SpecialRegisters) throws(MachineError) {
        do { try vcpu.setSpecialRegisters(registers) } catch { throw .kvm(error) }
    }

    public func msrs(_ indices: [UInt32]) throws(MachineError) -> [UInt32: UInt64] {
        do { return try vcpu.msrs(indices) } catch { throw .kvm(error) }
    }

    public func setMSRs(_ msrs: [(index: UInt32, value: UInt64)]) throws(MachineError) {
        do { try vcpu.setMSRs(msrs) } catch { throw .kvm(error) }
    }

    /// Turns single-stepping, software breakpoints (`int3` exits to the VMM
    /// instead of reaching the guest's own handler) and up to four hardware
    /// instruction breakpoints on or off; hits come back as `.debug` exits.
    public func setGuestDebug(singleStep: Bool, softwareBreakpoints: Bool, hardwareBreakpoints: [UInt64]) throws(MachineError) {
        do {
            try vcpu.setGuestDebug(
                singleStep: singleStep, softwareBreakpoints: softwareBreakpoints, hardwareBreakpoints: hardwareBreakpoints)
        } catch { throw .kvm(error) }
    }

    /// A handle another thread may use to make the vCPU stop (see `VCPUKicker`).
    public var kicker: VCPUKicker { vcpu.kicker }

    /// RIP, the general registers, control registers and segments, for a
    /// report after the guest failed. Never throws: what cannot be read says so.
    public func cpuStateReport() -> String {
        if let stop = group.recordedStop { return "vCPU \(stop.vcpu):\n\(stop.report)" }
        return CPUStateReport.format(registers: try? vcpu.registers(), special: try? vcpu.specialRegisters())
    }
}
