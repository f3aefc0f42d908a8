import HostSupport
import Synchronization
import VMCore

/// What every vCPU thread of one machine shares: the lock around the device
/// buses, how the first vCPU to end the machine tells the others, and the
/// pause gate at which running vCPUs park.
///
/// One instance per machine, never global. Its pause and stop state sits
/// behind one `MonotonicCondition` (pthread primitives, which ThreadSanitizer
/// follows; see `ThreadLock`), so a paused vCPU sleeps rather than spins, and
/// a stop wakes it.
final class MachineLifecycle: @unchecked Sendable {
    // Unchecked: every stored `var` is touched only with `changed` held.

    /// Held while an exit is dispatched to the buses (and while the console
    /// feeds or flushes COM1): devices are written for one caller at a time.
    let busLock = ThreadLock(())
    /// Set once the machine is ending; vCPU loops leave at their next kick.
    /// An atomic so that loops can look without taking the mutex.
    let stopping = Atomic<Bool>(false)

    /// How a vCPU (or the VMM on its behalf) ended the machine.
    struct Stop: Sendable {
        var outcome: Result<StopReason, MachineError>
        var vcpu: UInt32
        /// The registers of that vCPU when it stopped, for a failure report.
        var report: String
    }

    private let changed = MonotonicCondition()
    private var pauseRequested = false
    /// vCPU loops running now, and how many of them are parked.
    private var active = 0
    private var parked = 0
    private var stop: Stop?
    private var stopTaken = false
    private var everRan = false

    private func locked<R>(_ body: () -> R) -> R { changed.withLock(body) }

    // MARK: Stopping

    /// Records `stop` unless the machine is already ending; returns whether it
    /// was the first. The caller then kicks every vCPU.
    func record(_ stop: Stop) -> Bool {
        locked {
            // A stop that a finished run already returned does not count.
            guard self.stop == nil || stopTaken else { return false }
            self.stop = stop
            stopTaken = false
            stopping.store(true, ordering: .releasing)
            // A parked vCPU must wake up to leave.
            changed.broadcast()
            return true
        }
    }

    /// The recorded stop, handed out once (to the loop that returns it from `run()`).
    func takeStop() -> Stop? {
        locked {
            guard let stop, !stopTaken else { return nil }
            stopTaken = true
            return stop
        }
    }

    /// The recorded stop, if any.
    var recordedStop: Stop? { locked { stop } }

    /// Makes vCPU loops leave at their next kick, without a stop of their own
    /// to report (the bootstrap processor's loop already has its reason).
    func markStopping() {
        locked {
            stopping.store(true, ordering: .releasing)
            changed.broadcast()
        }
    }

    /// Clears what the previous run left, so that the machine can run again
    /// (a guest that ended and is continued, a restored or reset machine). A
    /// stop recorded but not yet returned (asked for before the run) stays.
    func prepareRun() {
        locked {
            guard stop == nil || stopTaken else { return }
            stop = nil
            stopTaken = false
            stopping.store(false, ordering: .releasing)
        }
    }

    // MARK: Pausing

    /// A vCPU loop starts: it counts until `leave()`. A loop that starts while
    /// a pause is requested parks at once, in the same step, so a controller
    /// never sees a running loop that is not yet parked.
    func enter() {
        locked {
            active += 1
            everRan = true
            parkWhilePaused()
        }
    }

    func leave() {
        locked {
            active -= 1
            changed.broadcast()
        }
    }

    /// Parks the calling vCPU loop while a pause is requested and the machine
    /// is not ending; returns at once otherwise.
    func parkIfRequested() { locked { parkWhilePaused() } }

    /// `parkIfRequested()`, with the lock held.
    private func parkWhilePaused() {
        guard pauseRequested, !stopping.load(ordering: .acquiring) else { return }
        parked += 1
        changed.broadcast()
        while pauseRequested, !stopping.load(ordering: .acquiring) { changed.wait() }
        parked -= 1
    }

    /// Asks running vCPU loops to park; returns whether a pause was already
    /// requested. The caller kicks every vCPU, then `waitUntilQuiesced()`.
    func requestPause() -> Bool {
        locked {
            defer { pauseRequested = true }
            return pauseRequested
        }
    }

    /// Waits until every running vCPU loop is parked (or has left), or until
    /// `deadline` passes; returns whether they all are.
    @discardableResult
    func waitUntilQuiesced(until deadline: MonotonicDeadline? = nil) -> Bool {
        locked {
            while pauseRequested, parked < active {
                if !changed.wait(until: deadline) { return parked >= active }
            }
            return true
        }
    }

    /// Lets parked loops go on.
    func resume() {
        locked {
            pauseRequested = false
            changed.broadcast()
        }
    }

    /// Whether no vCPU is in `KVM_RUN` or about to enter it: nothing runs, or
    /// everything that runs is parked.
    var isQuiescent: Bool { locked { parked == active } }

    /// Whether no vCPU loop runs although one has: the machine's run ended.
    var runEnded: Bool { locked { active == 0 && everRan } }

    /// The state a caller sees.
    var runState: MachineRunState {
        locked {
            if pauseRequested { return .paused }
            if active > 0 { return .running }
            return everRan ? .stopped : .notStarted
        }
    }
}
