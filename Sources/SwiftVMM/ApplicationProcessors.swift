import Devices
import KVM
import Synchronization
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// What the vCPU threads of one machine share: the lock around the device
/// buses, and how the first vCPU to end the machine tells the others.
final class VCPUGroup: Sendable {
    /// Held while an exit is dispatched to the buses (and while the console
    /// feeds or flushes COM1): devices are written for one caller at a time.
    let busLock = ThreadLock(())
    /// Set once the machine is ending: application processors leave their loops.
    let stopping = Atomic<Bool>(false)

    /// How an application processor ended the machine.
    struct Stop: Sendable {
        var outcome: Result<StopReason, MachineError>
        var vcpu: UInt32
        /// The registers of that vCPU when it stopped, for a failure report.
        var report: String
    }

    private let stop = ThreadLock<Stop?>(nil)
    private let stopTaken = ThreadLock(false)

    /// Records `stop` unless another vCPU already ended the machine; returns
    /// whether it was the first.
    func record(_ stop: Stop) -> Bool {
        self.stop.withLock { current in
            guard current == nil else { return false }
            current = stop
            return true
        }
    }

    /// The recorded stop, handed out once (to the bootstrap processor's loop).
    func takeStop() -> Stop? {
        let recorded = stop.withLock { $0 }
        guard let recorded else { return nil }
        let first = stopTaken.withLock { taken in
            defer { taken = true }
            return !taken
        }
        return first ? recorded : nil
    }

    /// The recorded stop, if an application processor ended the machine.
    var recordedStop: Stop? { stop.withLock { $0 } }
}

/// An application processor: vCPU 1, 2, ... of a machine, run by a thread of
/// its own with the default dispatch.
///
/// It starts in KVM's wait-for-SIPI state, so its first `KVM_RUN` sleeps in the
/// kernel until the guest's bootstrap processor sends it INIT and SIPI through
/// the in-kernel local APIC, exactly as on hardware; the VMM never sets its
/// registers. Every exit it takes goes through the shared buses under the
/// group's lock. When it ends the machine (debug exit, shutdown, a failure) it
/// records why and kicks the bootstrap processor, whose loop ends the run.
final class ApplicationProcessor: @unchecked Sendable {
    // Unchecked: after `start()`, `vcpu` and `exitCount` belong to the thread
    // alone until `join()` returns; other threads only use `control` and
    // `kicker`, which are safe from anywhere.
    let id: UInt32
    private var vcpu: KVMVCPU
    let kicker: VCPUKicker
    let control = MachineControl()
    private let dispatcher: ExitDispatcher
    private let group: VCPUGroup
    /// Kicks the bootstrap processor.
    private let wakeBootstrapProcessor: @Sendable () -> Void
    /// Exits this vCPU took; read after `join()`.
    private(set) var exitCount = 0
    private var thread = pthread_t()
    private(set) var started = false

    init(
        id: UInt32, vcpu: consuming KVMVCPU, dispatcher: ExitDispatcher, group: VCPUGroup,
        wakeBootstrapProcessor: @escaping @Sendable () -> Void
    ) {
        self.id = id
        kicker = vcpu.kicker
        self.vcpu = vcpu
        self.dispatcher = dispatcher
        self.group = group
        self.wakeBootstrapProcessor = wakeBootstrapProcessor
    }

    /// `KVM_MP_STATE_UNINITIALIZED`: waiting for INIT and SIPI.
    static let waitForSIPI: MPState = .uninitialized

    /// The vCPU's multiprocessing state; only before `start()` (while its
    /// thread is in `KVM_RUN`, KVM holds the vCPU and the ioctl would wait).
    func mpState() throws(KVMError) -> MPState {
        precondition(!started, "the vCPU belongs to its thread")
        return try vcpu.mpState()
    }

    /// Starts the thread; returns whether there is one.
    func start() -> Bool {
        guard !started else { return true }
        let context = Unmanaged.passRetained(self).toOpaque()
        started =
            pthread_create(
                &thread, nil,
                { context in
                    guard let context else { return nil }
                    Unmanaged<ApplicationProcessor>.fromOpaque(context).takeRetainedValue().loop()
                    return nil
                }, context) == 0
        if !started { Unmanaged<ApplicationProcessor>.fromOpaque(context).release() }
        return started
    }

    /// Kicks the vCPU out of `KVM_RUN` (or its wait for SIPI); the group's
    /// `stopping` flag, set first, keeps it out.
    func kick() { control.kick(kicker) }

    /// Waits for the thread to end.
    func join() {
        guard started else { return }
        pthread_join(thread, nil)
        started = false
    }

    private func loop() {
        control.attach(thread: pthread_self())
        defer { control.detach() }
        while !group.stopping.load(ordering: .acquiring) {
            let exit: VMExit
            do { exit = try vcpu.run() } catch {
                end(.failure(.kvm(error)))
                return
            }
            exitCount &+= 1
            let action = group.busLock.withLock { _ in dispatcher.handle(exit) }
            switch action {
            case .resume, .stop(.interrupted):
                continue  // a kick: the loop condition says whether the machine is ending
            case .completeRead(let data):
                vcpu.completeRead(data)
            case .halt:
                // Only without an in-kernel irqchip, which SMP machines always have.
                end(.success(.halted(interruptsEnabled: (try? vcpu.registers().interruptsEnabled) ?? false)))
                return
            case .stop(.internalError(1, let data)):
                if let assist = InstructionAssist(emulationFailure: data) {
                    do throws(KVMError) { try assist.perform(on: vcpu) } catch {
                        end(.failure(.kvm(error)))
                        return
                    }
                    continue
                }
                end(.success(.internalError(suberror: 1, data: data)))
                return
            case .stop(let reason):
                end(.success(reason))
                return
            }
        }
    }

    /// Records why this vCPU ended the machine and wakes the bootstrap processor.
    private func end(_ outcome: Result<StopReason, MachineError>) {
        let report = CPUStateReport.format(registers: try? vcpu.registers(), special: try? vcpu.specialRegisters())
        if group.record(VCPUGroup.Stop(outcome: outcome, vcpu: id, report: report)) { wakeBootstrapProcessor() }
    }
}
