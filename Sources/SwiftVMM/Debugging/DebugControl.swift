import GDBStub
import KVM
import Synchronization
import VMCore

/// What a debugger attached to a machine has asked of its vCPUs, read by
/// every vCPU's exit path (`ExitPolicy`): which vCPUs single-step, where it
/// planted `int3`, and where a stop is reported.
///
/// One per machine. Off (one atomic load per exit) unless a debugger is
/// attached. A vCPU that stops (a debug exit, a planted `int3`, a step over
/// an I/O instruction) asks the machine to pause before it reports, then
/// parks like a paused vCPU; the debugger's thread quiesces the others.
final class DebugControl: @unchecked Sendable {
    // Unchecked: the stored `var`s are only touched with `lock` held.
    let active = Atomic<Bool>(false)
    private let lock = ThreadLock(())
    private var stepping: Set<UInt32> = []
    /// Linear address -> the guest's byte the planted `int3` replaced.
    private var planted: [UInt64: UInt8] = [:]
    /// Whether the target runs and owes the debugger a stop.
    private var running = false
    /// The vCPU whose stop was reported last (it parks by itself).
    private var lastStopped: Int?
    private var onStop: (@Sendable (DebugStop) -> Void)?
    /// The hardware slots the debugger set, applied to every vCPU on resume.
    private var storedSlots: [HardwareBreakpoint?] = []

    /// Watched bytes as they were when the target last resumed, per slot:
    /// where the host does not report data breakpoints (KVM's emulator, which
    /// runs a PVM guest's ring-0 and real-mode code, checks none), the vCPUs
    /// step and a change of these bytes is the hit.
    private var watchedValues: [Int: [UInt8]] = [:]
    /// Reads guest-physical memory for the watch check; set by the machine.
    var readPhysical: ((UInt64, Int) -> [UInt8]?)?

    var slots: [HardwareBreakpoint?] {
        get { lock.withLock { _ in storedSlots } }
        set { lock.withLock { _ in storedSlots = newValue } }
    }

    var isActive: Bool { active.load(ordering: .acquiring) }

    /// Called on a vCPU's thread for each exit while a debugger is attached:
    /// an outcome when the exit is the debugger's (the vCPU then parks), `nil` to handle it as usual.
    func intercept(_ exit: VMExit, vcpu: borrowing KVMVCPU, id: UInt32, lifecycle: MachineLifecycle) throws(MachineError) -> ExitPolicy
        .Outcome?
    {
        switch exit {
        case .debug(let info):
            let reason: DebugStop.Reason
            if let slot = info.firedSlots.first {
                reason = .slot(slot)
            } else if info.exception == 3 {
                reason = .softwareBreakpoint
            } else if lock.withLock({ _ in stepping.contains(id) || watchedValues.isEmpty }) {
                reason = .step
            } else if let slot = changedWatch(vcpu: vcpu) {
                reason = .slot(slot)
            } else {
                // A step only taken to look at the watched bytes: nothing changed, go on.
                return .resume
            }
            report(DebugStop(vcpu: Int(id), reason: reason), lifecycle: lifecycle)
            return .kicked
        case .internalError(1, let data) where InstructionAssist.instructionBytes(data).first == 0xcc:
            // KVM (PVM) could not run an int3: stop if it is one of ours, else let InstructionAssist deliver #BP.
            let linear: UInt64
            do { linear = try vcpu.specialRegisters().cs.base &+ vcpu.registers().rip } catch { throw .kvm(error) }
            guard isPlanted(linear) else { return nil }
            report(DebugStop(vcpu: Int(id), reason: .softwareBreakpoint), lifecycle: lifecycle)
            return .kicked
        default:
            return nil
        }
    }

    /// The first watch slot whose bytes differ from their value at the resume (and records the new value).
    private func changedWatch(vcpu: borrowing KVMVCPU) -> Int? {
        let (watched, slots) = lock.withLock { _ in (watchedValues, storedSlots) }
        for (index, old) in watched.sorted(by: { $0.key < $1.key }) {
            guard let slot = slots[index], let physical = try? vcpu.translate(slot.address),
                let now = readPhysical?(physical, slot.length), now != old
            else { continue }
            lock.withLock { _ in watchedValues[index] = now }
            return index
        }
        return nil
    }

    /// Takes the watched bytes' values before a resume (`read` translates
    /// and reads as the debugger's vCPU sees memory); returns whether any slot watches data.
    func snapshotWatches(_ read: (UInt64, Int) -> [UInt8]?) -> Bool {
        var values: [Int: [UInt8]] = [:]
        for (index, slot) in slots.enumerated() {
            guard let slot, slot.trigger != .execute, let bytes = read(slot.address, slot.length) else { continue }
            values[index] = bytes
        }
        lock.withLock { _ in watchedValues = values }
        return !values.isEmpty
    }

    /// After a port or MMIO exit was handled: a vCPU that steps has its
    /// access completed now (KVM would otherwise finish it on the next
    /// `KVM_RUN` and run one more instruction), and the step ends here.
    func afterAccess(_ exit: VMExit, vcpu: inout KVMVCPU, id: UInt32, lifecycle: MachineLifecycle) throws(MachineError)
        -> ExitPolicy.Outcome?
    {
        switch exit {
        case .ioIn, .ioOut, .mmioRead, .mmioWrite: break
        default: return nil
        }
        guard lock.withLock({ _ in stepping.contains(id) }) else { return nil }
        do { _ = try vcpu.completePendingIO() } catch { throw .kvm(error) }
        report(DebugStop(vcpu: Int(id), reason: .step), lifecycle: lifecycle)
        return .kicked
    }

    /// Records the first stop since the last resume: the machine pauses, the debugger hears of it.
    func report(_ stop: DebugStop, lifecycle: MachineLifecycle) {
        let callback: (@Sendable (DebugStop) -> Void)? = lock.withLock { _ in
            guard running else { return nil }
            running = false
            lastStopped = stop.vcpu
            return onStop
        }
        guard let callback else {
            // Another vCPU's stop (or an interrupt) came first: park with the rest.
            _ = lifecycle.requestPause()
            return
        }
        _ = lifecycle.requestPause()
        callback(stop)
    }

    /// Reports a stop the debugger's side found (an interrupt, the machine's end) if the target still runs.
    func reportFromOutside(_ stop: DebugStop) -> Bool {
        let callback: (@Sendable (DebugStop) -> Void)? = lock.withLock { _ in
            guard running else { return nil }
            running = false
            return onStop
        }
        callback?(stop)
        return callback != nil
    }

    /// The vCPU that reported the last stop (`nil` after an interrupt or a resume).
    var stoppedVCPU: Int? { lock.withLock { _ in lastStopped } }

    /// Whether a resume is outstanding.
    var isRunning: Bool { lock.withLock { _ in running } }

    func attach(onStop: @escaping @Sendable (DebugStop) -> Void) {
        lock.withLock { _ in
            self.onStop = onStop
            running = false
            stepping = []
        }
        active.store(true, ordering: .releasing)
    }

    func detach() {
        active.store(false, ordering: .releasing)
        lock.withLock { _ in
            onStop = nil
            running = false
            stepping = []
            watchedValues = [:]
        }
    }

    /// The target is about to run: these vCPUs step.
    func resuming(stepping ids: Set<UInt32>) {
        lock.withLock { _ in
            stepping = ids
            running = true
            lastStopped = nil
        }
    }

    func isPlanted(_ address: UInt64) -> Bool { lock.withLock { _ in planted[address] != nil } }
    func plant(_ address: UInt64, original: UInt8) { lock.withLock { _ in planted[address] = original } }
    func unplant(_ address: UInt64) -> UInt8? { lock.withLock { _ in planted.removeValue(forKey: address) } }
    var plantedBytes: [UInt64: UInt8] { lock.withLock { _ in planted } }
}
