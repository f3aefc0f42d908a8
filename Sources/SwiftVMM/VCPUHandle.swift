import KVM
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// Kicks one vCPU out of `KVM_RUN` from any thread.
///
/// A kick sets the vCPU's `immediate_exit` (so a vCPU about to enter the
/// guest comes straight back) and, when a thread is running the vCPU, sends
/// that thread `VCPUSignal` (so a vCPU inside the guest leaves with `EINTR`).
/// What the vCPU does then (park for a pause, leave for a stop, feed the
/// console) is the machine's `MachineLifecycle` state, not the kick's.
public final class VCPUHandle: Sendable {
    /// The vCPU's index (and APIC id).
    public let id: UInt32
    let kicker: VCPUKicker
    /// The thread running the vCPU, while one is.
    private let thread = ThreadLock<pthread_t?>(nil)

    init(id: UInt32, kicker: VCPUKicker) {
        self.id = id
        self.kicker = kicker
    }

    /// Makes the calling thread the one kicks signal, unless one already is;
    /// returns whether it did (and so must `detach()`).
    @discardableResult
    func attach() -> Bool {
        VCPUSignal.install()
        VCPUSignal.unblockOnCurrentThread()
        return thread.withLock { current in
            guard current == nil else { return false }
            current = pthread_self()
            return true
        }
    }

    func detach() { thread.withLock { $0 = nil } }

    /// Makes the vCPU leave `KVM_RUN` soon. Under the lock, so the thread
    /// cannot detach (and end) between the check and the signal.
    public func kick() {
        thread.withLock { thread in
            kicker.requestExit()
            if let thread { pthread_kill(thread, VCPUSignal.number) }
        }
    }
}

/// Kicks, pauses or stops a running `Machine` from any thread (a console
/// reader, a control socket, a signal handler's helper).
public struct MachineRemote: Sendable {
    let lifecycle: MachineLifecycle
    let vcpus: [VCPUHandle]

    /// Makes the bootstrap processor leave `KVM_RUN` soon; the machine then
    /// drains console input, flushes output and runs its `onKick`.
    public func kick() { vcpus.first?.kick() }

    /// Makes `Machine.run()` return `.stopRequested`.
    public func requestStop() {
        let report = "stopped on request"
        if lifecycle.record(MachineLifecycle.Stop(outcome: .success(.stopRequested), vcpu: 0, report: report)) {
            for vcpu in vcpus { vcpu.kick() }
        }
    }

    /// Parks every running vCPU at an instruction boundary, its last I/O
    /// completed, and returns once they all are (at once when nothing runs).
    public func pause() {
        guard !lifecycle.requestPause() else { return lifecycle.waitUntilQuiesced() }
        for vcpu in vcpus { vcpu.kick() }
        lifecycle.waitUntilQuiesced()
    }

    /// Lets paused vCPUs go on.
    public func resume() { lifecycle.resume() }

    /// Where the machine is in its life.
    public var runState: MachineRunState { lifecycle.runState }
}
