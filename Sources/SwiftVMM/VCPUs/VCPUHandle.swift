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

    /// Makes the vCPU's next `KVM_RUN` return at once, without signalling a
    /// vCPU that is inside the guest now (see `MachineRemote.pause()`).
    func requestExit() { kicker.requestExit() }

    /// Makes the vCPU leave `KVM_RUN` soon. Under the lock, so the thread
    /// cannot detach (and end) between the check and the signal.
    public func kick() {
        thread.withLock { thread in
            kicker.requestExit()
            if let thread { pthread_kill(thread, VCPUSignal.number) }
        }
    }
}
