import HostSupport
import Synchronization
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// Auto-converge: slows a running guest down by parking its vCPUs for
/// `percent` of every 20 ms slice, so that it dirties memory more slowly than
/// the migration sends it (QEMU's cpu-throttle: 20 % at first, 10 % more a step, at most 99 %).
/// The devices' I/O thread is not stopped; only the vCPUs wait.
final class MigrationThrottle: Sendable {
    static let slice: Duration = .milliseconds(20)
    static let initial = 20
    static let step = 10
    static let maximum = 99

    private let percentValue = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let thread = ThreadLock<JoinHandle?>(nil)
    private let remote: MachineRemote

    init(remote: MachineRemote) { self.remote = remote }

    /// The share of each slice the vCPUs sleep.
    var percent: Int { percentValue.load(ordering: .relaxed) }

    /// One step harder: 20 % the first time, then 10 % more, at most 99 %.
    /// Starts the thread the first time.
    func increase() {
        let next = percent == 0 ? Self.initial : min(Self.maximum, percent + Self.step)
        percentValue.store(next, ordering: .relaxed)
        thread.withLock { handle in
            guard handle == nil else { return }
            handle = try? HostThread.spawn(name: "migration throttle") { [self] in loop() }
        }
    }

    private func loop() {
        let slice = Self.slice.components.attoseconds / 1_000_000_000 + Self.slice.components.seconds * 1_000_000_000
        while !stopping.load(ordering: .acquiring) {
            let share = Int64(percent)
            remote.pauseVCPUs()
            Self.sleep(nanoseconds: slice * share / 100)
            remote.resumeVCPUs()
            Self.sleep(nanoseconds: slice * (100 - share) / 100)
        }
    }

    /// Ends the throttle; the vCPUs run at full speed again when it returns.
    func stop() {
        stopping.store(true, ordering: .releasing)
        let handle = thread.withLock { $0 }
        handle?.join()
    }

    static func sleep(nanoseconds: Int64) {
        guard nanoseconds > 0 else { return }
        var time = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        var left = timespec()
        while nanosleep(&time, &left) != 0, errno == EINTR { time = left }
    }
}
