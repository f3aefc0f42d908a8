import Devices
import HostSupport
import KVM
import VMCore

extension Machine {
    /// Runs the guest until it stops, dispatching every exit to the devices.
    ///
    /// Per exit this does the `KVM_RUN` ioctl and the dispatch, nothing else:
    /// no allocation and no other system call for port and MMIO accesses.
    /// With a `timeout`, a guest still running when it passes is stopped
    /// (`.deadlineExpired`); without one, the guest may run forever. A machine
    /// that stopped (or was restored) may be run again: it continues.
    public func run(timeout: Duration? = nil) throws(MachineError) -> StopReason {
        defer { devices.flushOutputs() }
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
        // No thread to be had: run here.
        guard let thread = try? HostThread.spawn(name: "vcpu 0", { job.run() }) else { return try run(timeout: timeout) }
        thread.join()
        return try job.result.get()
    }

    private func runLoop() throws(MachineError) -> StopReason {
        lifecycle.prepareRun()
        let attached = bootstrap.handle.attach()
        lifecycle.enter()
        defer {
            lifecycle.leave()
            // Every way out of the run (a stop, a thrown error) ends the application processors.
            stopApplicationProcessors()
            if attached { bootstrap.handle.detach() }
        }
        // On a PC, look in on the vCPU a few times a second so that a guest
        // halted for good (which KVM keeps to itself) ends the run; first
        // after a millisecond, then less and less often, so that a guest that
        // halts at once (a test's) ends in milliseconds, not 200.
        let probe =
            platform == .pc
            ? try? PeriodicTimer(name: "halt probe", every: .milliseconds(200), startingAt: .milliseconds(1)) {
                [handle = bootstrap.handle] in handle.kick()
            } : nil
        defer { probe?.stop() }
        while true {
            let exit = try nextExit()
            if let reason = try dispatch(exit) {
                guard reason == .suspended, platform == .pc else { return reason }
                // S3: sleep with RAM kept until a wake event, then resume at the waking vector.
                if let stop = try sleepUntilWakeEvent() { return stop }
                continue
            }
            if serialInput != nil, case .ioIn(PortMap.com1.base...PortMap.com1.base + 7, _, _) = exit { withBuses { drainSerialInput() } }
        }
    }

    /// Runs `body`, which drives this machine's vCPU on the calling thread, with
    /// a deadline: once `timeout` has passed, the vCPU's current or next
    /// `KVM_RUN` returns at once (`nextExit()` gives `.interrupted`, and
    /// `dispatch` turns it into `.deadlineExpired`). Deadlines do not nest.
    public func withDeadline<R, E: Error>(_ timeout: Duration, _ body: () throws(E) -> R) throws(E) -> R {
        let deadline = RunDeadline(after: timeout, kicker: bootstrap.vcpu.kicker)
        activeDeadline = deadline
        // An application processor that ends the machine must be able to kick
        // this thread out of KVM_RUN (`run()` attaches it too).
        let attached = !applicationProcessors.isEmpty && bootstrap.handle.attach()
        defer {
            if attached { bootstrap.handle.detach() }
            activeDeadline = nil
            // A kick that landed after the guest had stopped anyway must not
            // interrupt the next run.
            if deadline.disarm() { bootstrap.vcpu.clearExitRequest() }
        }
        return try body()
    }

    /// Whether the current `withDeadline` has expired.
    public var deadlineHasExpired: Bool { activeDeadline?.hasFired ?? false }

    /// Runs the bootstrap processor until its next exit and returns it, undispatched.
    public func nextExit() throws(MachineError) -> VMExit {
        if !applicationProcessorsStarted, !applicationProcessors.isEmpty { startApplicationProcessors() }
        return try bootstrap.nextExit()
    }

    /// Handles `exit` as `run()` would: answers reads, and returns why the
    /// machine must stop, or `nil` to go on.
    public func dispatch(_ exit: VMExit) throws(MachineError) -> StopReason? {
        let reason: StopReason?
        switch try bootstrap.handle(exit) {
        case .resume: reason = nil
        case .kicked: reason = try handleKick()
        case .stop(let stop): reason = stop
        }
        // A guest suspended to RAM keeps its application processors for when it wakes.
        if let reason, reason != .suspended { stopApplicationProcessors() }
        return reason
    }

    // MARK: Kicks from other threads

    /// Makes the vCPU leave `KVM_RUN` soon and run `onKick`; safe from any thread.
    public func kick() { remote.kick() }

    /// Makes `run()` return `.stopRequested`; safe from any thread.
    public func requestStop() { remote.requestStop() }

    /// A handle other threads (a console reader, a signal handler's helper,
    /// a control socket) use to kick, pause or stop this machine.
    public var remote: MachineRemote {
        MachineRemote(lifecycle: lifecycle, vcpus: runners.map(\.handle), virtio: devices.virtio?.transports ?? [])
    }

    /// Parks every running vCPU at an instruction boundary (out of `KVM_RUN`,
    /// its last port or MMIO access completed) and returns once they all are.
    /// Safe from any thread but a vCPU's own; a machine that is not running
    /// is paused at once, and a run started while paused parks at its start.
    /// The devices' I/O thread stops too (`MachineRemote.pause()`), so that a
    /// snapshot of the paused machine sees RAM and queues that agree.
    public func pause() { remote.pause() }

    /// Lets a paused machine go on.
    public func resume() { remote.resume() }

    /// Where the machine is in its life.
    public var runState: MachineRunState { lifecycle.runState }

    private func drainSerialInput() {
        guard let source = serialInput, source.hasPendingInput else { return }
        let space = serial.inputSpace
        guard space > 0 else { return }
        _ = serial.enqueueInput(source.takeInput(max: space))
    }

    /// Why the bootstrap processor was kicked, and what follows.
    private func handleKick() throws(MachineError) -> StopReason? {
        // Park first: a stop asked for while paused is seen when the park ends.
        lifecycle.parkIfRequested()
        if deadlineHasExpired { return .deadlineExpired }
        if let stop = lifecycle.takeStop() {
            if stop.vcpu != 0 { logger.debug("vCPU \(stop.vcpu) ended the machine") }
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

    /// Halted (`KVM_MP_STATE_HALTED`) with RFLAGS.IF clear: only an NMI could wake it, and no device sends one.
    private func isHaltedWithInterruptsOff() throws(MachineError) -> Bool {
        let halted: Bool
        do { halted = try bootstrap.vcpu.mpState() == .halted } catch { throw .kvm(error) }
        guard halted else { return false }
        return try !registers().interruptsEnabled
    }

    // MARK: Application processors

    /// Starts a thread for each application processor; each sleeps in KVM
    /// until the guest sends its vCPU INIT and SIPI.
    private func startApplicationProcessors() {
        lifecycle.prepareRun()
        applicationProcessorsStarted = true
        for runner in applicationProcessors where !runner.start() {
            logger.error("no thread for vCPU \(runner.id): the guest cannot start it")
        }
    }

    /// Ends every application processor's thread and waits for it: marks the
    /// machine as ending, then kicks each vCPU out of `KVM_RUN` (or its wait
    /// for SIPI). Idempotent.
    func stopApplicationProcessors() {
        guard applicationProcessorsStarted else { return }
        applicationProcessorsStarted = false
        lifecycle.markStopping()
        for runner in applicationProcessors { runner.handle.kick() }
        for runner in applicationProcessors { runner.join() }
    }

    /// Runs `body` holding the bus lock when other vCPUs may be using the devices.
    func withBuses(_ body: () -> Void) {
        if applicationProcessors.isEmpty { body() } else { lifecycle.busLock.withLock { _ in body() } }
    }
}
