import Devices
import Firmware
import GuestMemory
import KVM
import Logging
import VMCore
import X86Boot

/// A virtual PC with one vCPU: guest RAM, the PC devices, and a guest loaded
/// and ready to enter.
///
/// Built from a `MachineConfiguration` in a few steps (open KVM, create the
/// VM and its RAM, plug in the devices, load the guest, set the entry state),
/// then driven with `run()` or, one exit at a time, with `nextExit()` and
/// `dispatch(_:)`.
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
    public let postCodes = PostCodePort()
    public private(set) var dispatcher: ExitDispatcher
    /// Where the guest was loaded.
    public let image: LoadedImage
    /// The mode the guest was entered in.
    public let mode: CPUMode
    public let logger: Logger
    /// The number of VM exits so far; a counter on the machine, not a global.
    public private(set) var exitCount = 0

    /// The TSS VT-x needs for real-mode code without unrestricted guest: three
    /// pages just below the 4 GiB boundary's BIOS area, where no RAM will be.
    static let tssAddress = GuestAddress(0xfffb_d000)

    public init(_ configuration: MachineConfiguration) throws(MachineError) {
        logger = configuration.logger
        let size = configuration.memorySize
        guard size >= MachineConfiguration.minimumMemorySize, size % GuestMemory.pageSize == 0 else {
            throw .invalidMemorySize(size, minimum: MachineConfiguration.minimumMemorySize)
        }
        do throws(KVMError) {
            kvm = try KVMSystem()
            if try kvm.checkExtension(.userMemory) == 0 { throw .missingCapability("KVM_CAP_USER_MEMORY") }
            vm = try kvm.createVM()
            if try kvm.checkExtension(.setTSSAddress) > 0 { try vm.setTSSAddress(Self.tssAddress) }
        } catch { throw .kvm(error) }
        do { memory = try GuestMemory(size: size) } catch { throw .memory(error) }
        do {
            for (slot, mapping) in memory.hostMappings.enumerated() {
                try vm.setUserMemoryRegion(
                    slot: UInt32(slot), guestAddress: mapping.guestBase, size: mapping.size, hostAddress: mapping.hostAddress)
            }
            vcpu = try vm.createVCPU(id: 0)
            // Without KVM_SET_CPUID2 the guest's CPUID has no long-mode bit, and
            // KVM refuses a guest WRMSR that sets EFER.LME (#GP): guests that
            // enter long mode themselves (the demo) would triple fault.
            try vcpu.setCPUID(try kvm.supportedCPUID())
        } catch { throw .kvm(error) }

        serialOutput = configuration.serialOutput ?? FileSerialOutput.standardOutput()
        serial = Serial16550(output: serialOutput)
        do {
            try ports.register(serial, at: PortMap.com1.base, length: PortMap.com1.length)
            try ports.register(postCodes, at: PortMap.postCode.base, length: PortMap.postCode.length)
            try ports.register(DebugExitPort(), at: PortMap.debugExit.base, length: PortMap.debugExit.length)
        } catch { throw .bus(error) }
        dispatcher = ExitDispatcher(ports: ports, mmio: mmio, logger: logger)

        let entryState: EntryState
        do {
            (mode, image) = try Self.load(configuration.guest, into: memory)
            entryState = try CPUSetup.entryState(mode: mode, entry: image.entry, stackTop: image.lowestAddress, memory: memory)
        } catch { throw .boot(error) }
        do {
            try vcpu.setSpecialRegisters(entryState.specialRegisters)
            try vcpu.setRegisters(entryState.registers)
        } catch { throw .kvm(error) }
        logger.debug("guest loaded at \(hex(image.lowestAddress))..<\(hex(image.endAddress)), entering \(mode) mode at \(hex(image.entry))")
    }

    static func load(_ guest: MachineConfiguration.Guest, into memory: borrowing GuestMemory) throws(BootError) -> (CPUMode, LoadedImage) {
        switch guest {
        case .flat(let bytes, let mode, let loadAddress, let entry):
            let address = loadAddress ?? (mode == .real ? X86Layout.defaultRealModeLoadAddress : X86Layout.defaultLoadAddress)
            return (mode, try FlatImage.load(bytes, at: address, entry: entry, mode: mode, into: memory))
        case .elf(let bytes):
            return (.long, try ELF64Image(parsing: bytes).load(mode: .long, into: memory))
        case .firmware(let firmware):
            switch firmware.format {
            case .flat: return try load(.flat(bytes: firmware.bytes, mode: firmware.mode, loadAddress: firmware.loadAddress), into: memory)
            case .elf: return try load(.elf(bytes: firmware.bytes), into: memory)
            }
        }
    }

    /// Runs the guest until it stops, dispatching every exit to the devices.
    ///
    /// Per exit this does the `KVM_RUN` ioctl and the dispatch, nothing else:
    /// no allocation and no other system call for port and MMIO accesses.
    /// With a `timeout`, a guest still running when it passes is stopped
    /// (`.deadlineExpired`); without one, the guest may run forever.
    public func run(timeout: Duration? = nil) throws(MachineError) -> StopReason {
        defer { serialOutput.flush() }
        guard let timeout else { return try runLoop() }
        return try withDeadline(timeout) { () throws(MachineError) -> StopReason in try runLoop() }
    }

    private func runLoop() throws(MachineError) -> StopReason {
        while true {
            let exit = try nextExit()
            if let reason = try dispatch(exit) { return reason }
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
        defer {
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
        do { return try vcpu.run() } catch { throw .kvm(error) }
    }

    /// Handles `exit` as `run()` would: answers reads, and returns why the
    /// machine must stop, or `nil` to go on.
    public func dispatch(_ exit: VMExit) throws(MachineError) -> StopReason? {
        switch dispatcher.handle(exit) {
        case .resume:
            return nil
        case .completeRead(let data):
            vcpu.completeRead(data)
            return nil
        case .halt:
            // No device of this machine raises interrupts, so a halted CPU
            // stays halted whatever RFLAGS.IF says; report which it was.
            return .halted(interruptsEnabled: try registers().interruptsEnabled)
        case .stop(.interrupted) where deadlineHasExpired:
            return .deadlineExpired
        case .stop(let reason):
            return reason
        }
    }

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
        CPUStateReport.format(registers: try? vcpu.registers(), special: try? vcpu.specialRegisters())
    }
}
