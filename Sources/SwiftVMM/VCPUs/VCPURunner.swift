import HostSupport
import KVM
import VMCore

/// One vCPU of a machine and the loop that runs it.
///
/// The bootstrap processor's runner is driven by `Machine` on whichever
/// thread calls `run()` or `nextExit()`; each application processor's runs
/// `loop()` on a thread of its own, started with the machine's first run. An
/// application processor starts in KVM's wait-for-SIPI state, so its first
/// `KVM_RUN` sleeps in the kernel until the guest's bootstrap processor sends
/// it INIT and SIPI through the in-kernel local APIC, exactly as on hardware.
/// Every runner takes its exits through the machine's one `ExitPolicy`.
final class VCPURunner: @unchecked Sendable {
    // Unchecked: `vcpu` and the counters belong to whichever thread runs the
    // vCPU (its own thread between `start()` and `join()`, else the machine's
    // caller), and to a controller only while the machine is quiescent
    // (paused, or not running), which `MachineLifecycle` hands over under its
    // mutex. Other threads only use `handle`, which is safe from anywhere.
    let id: UInt32
    var vcpu: KVMVCPU
    let handle: VCPUHandle
    private let policy: ExitPolicy
    private let lifecycle: MachineLifecycle
    /// Kicks the vCPU that returns the machine's stop from `run()`.
    private let wakeBootstrapProcessor: @Sendable () -> Void
    /// Exits this vCPU took.
    private(set) var exitCount = 0
    /// Instructions KVM could not run that the VMM carried out (see `InstructionAssist`).
    var assistedInstructions = 0
    private var thread: JoinHandle?
    var started: Bool { thread != nil }

    init(
        id: UInt32, vcpu: consuming KVMVCPU, policy: ExitPolicy, lifecycle: MachineLifecycle,
        wakeBootstrapProcessor: @escaping @Sendable () -> Void
    ) {
        self.id = id
        handle = VCPUHandle(id: id, kicker: vcpu.kicker)
        self.vcpu = vcpu
        self.policy = policy
        self.lifecycle = lifecycle
        self.wakeBootstrapProcessor = wakeBootstrapProcessor
    }

    /// Runs the guest until its next exit.
    func nextExit() throws(MachineError) -> VMExit {
        exitCount &+= 1
        do { return try vcpu.run() } catch { throw .kvm(error) }
    }

    /// Applies the machine's exit policy to `exit`.
    func handle(_ exit: VMExit) throws(MachineError) -> ExitPolicy.Outcome {
        try policy.handle(exit, on: &vcpu, id: id, assisted: &assistedInstructions)
    }

    /// The vCPU's registers for a failure report; never throws.
    func stateReport() -> String {
        CPUStateReport.format(registers: try? vcpu.registers(), special: try? vcpu.specialRegisters())
    }

    // MARK: A thread of its own

    /// Starts the thread; returns whether there is one.
    func start() -> Bool {
        guard thread == nil else { return true }
        thread = try? HostThread.spawn(name: "vcpu \(id)") { [self] in loop() }
        return thread != nil
    }

    /// Waits for the thread to end (after the machine's `stopping` was set and the vCPU kicked).
    func join() {
        thread?.join()
        thread = nil
    }

    private func loop() {
        handle.attach()
        lifecycle.enter()
        defer {
            lifecycle.leave()
            handle.detach()
        }
        while !lifecycle.stopping.load(ordering: .acquiring) {
            let outcome: ExitPolicy.Outcome
            do { outcome = try handle(try nextExit()) } catch {
                end(.failure(error))
                return
            }
            switch outcome {
            case .resume:
                continue
            case .kicked:
                // The loop condition says whether the machine is ending.
                lifecycle.parkIfRequested()
            case .stop(let reason):
                end(.success(reason))
                return
            }
        }
    }

    /// Records why this vCPU ended the machine and wakes the bootstrap processor.
    private func end(_ outcome: Result<StopReason, MachineError>) {
        if lifecycle.record(MachineLifecycle.Stop(outcome: outcome, vcpu: id, report: stateReport())) { wakeBootstrapProcessor() }
    }
}
