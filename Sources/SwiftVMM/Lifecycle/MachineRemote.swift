import HostSupport
import Virtio

/// Kicks, pauses or stops a running `Machine` from any thread (a console
/// reader, a control socket, a signal handler's helper).
public struct MachineRemote: Sendable {
    let lifecycle: MachineLifecycle
    let vcpus: [VCPUHandle]
    /// The virtio transports, whose I/O thread a pause stops too.
    var virtio: [VirtioMMIOTransport] = []

    /// Makes the bootstrap processor leave `KVM_RUN` soon; the machine then
    /// drains console input, flushes output and runs its `onKick`.
    public func kick() { vcpus.first?.kick() }

    /// Makes `Machine.run()` return `.stopRequested`.
    public func requestStop() {
        // Every vCPU's next KVM_RUN returns before the stop is recorded: a
        // parked vCPU that the record wakes must not enter the guest again.
        for vcpu in vcpus { vcpu.requestExit() }
        let report = "stopped on request"
        if lifecycle.record(MachineLifecycle.Stop(outcome: .success(.stopRequested), vcpu: 0, report: report)) {
            for vcpu in vcpus { vcpu.kick() }
        }
    }

    /// Parks every running vCPU at an instruction boundary, its last I/O
    /// completed, and returns once they all are (at once when nothing runs).
    /// The virtio devices' I/O thread stops too (once per pause), so that the
    /// state of a paused machine and its RAM agree, as `Machine.pause()` has it.
    public func pause() {
        guard !pauseVCPUs() else { return }
        for transport in virtio { transport.suspend() }
    }

    /// Parks the vCPUs only, leaving the devices' I/O thread alone (auto-converge's
    /// throttle); returns whether a pause was already requested.
    @discardableResult
    func pauseVCPUs() -> Bool {
        guard !lifecycle.requestPause() else {
            lifecycle.waitUntilQuiesced()
            return true
        }
        quiesce()
        return false
    }

    /// Stops the machine with `reason`, as `requestStop()` does.
    func requestStop(reason: StopReason) {
        for vcpu in vcpus { vcpu.requestExit() }
        if lifecycle.record(MachineLifecycle.Stop(outcome: .success(reason), vcpu: 0, report: reason.description)) {
            for vcpu in vcpus { vcpu.kick() }
        }
    }

    /// Brings every running vCPU but `exception` to its park once a pause
    /// is requested, and waits until all are parked.
    func quiesce(except exception: Int? = nil) {
        let others = vcpus.enumerated().filter { $0.offset != exception }.map(\.element)
        // `immediate_exit` alone first: a vCPU between exits then finishes
        // its last port or MMIO access on its next KVM_RUN and comes straight
        // back. Only a vCPU still running guest code after that (which has no
        // access pending) gets the signal too: on this project's PVM hosts a
        // signal that lands while KVM_RUN starts can cost the pending access
        // its completion, and the saved state would repeat it.
        for vcpu in others { vcpu.requestExit() }
        if lifecycle.waitUntilQuiesced(until: .after(.milliseconds(2))) { return }
        for vcpu in others { vcpu.kick() }
        lifecycle.waitUntilQuiesced()
    }

    /// Wakes a guest that suspended itself to RAM (S3), as a wake event
    /// would; ignored by a guest that is not suspended when `run()` next
    /// looks (it clears the request when the guest suspends).
    public func requestWake() { lifecycle.wakeRequested.store(true, ordering: .releasing) }

    /// Lets paused vCPUs (and the devices' I/O thread) go on.
    public func resume() {
        if lifecycle.runState == .paused { for transport in virtio { transport.resume() } }
        lifecycle.resume()
    }

    /// Lets vCPUs parked by `pauseVCPUs()` go on.
    func resumeVCPUs() { lifecycle.resume() }

    /// Where the machine is in its life.
    public var runState: MachineRunState { lifecycle.runState }
}
