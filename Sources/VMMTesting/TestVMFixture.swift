import Firmware
import Logging
import SwiftVMM
import VMCore

/// A guest booted once to a point the tests choose, handing each test a
/// fresh copy of it: the way to run many short tests against a guest that
/// takes long to boot.
///
/// ```swift
/// // Boots at most once per process, on first use, whichever test comes first.
/// static let fixture = Result {
///     try TestVMFixture(FirmwareImage.longSlowBoot) { vm in
///         _ = try vm.runUntilHypercall()      // the guest says it is ready
///     }
/// }
///
/// @Test(arguments: 0..<100) func lookup(input: UInt64) throws {
///     try Self.fixture.get().withFreshVM { vm in
///         try vm.modifyRegisters { $0.rax = input }
///         #expect(try vm.runToCompletion() == .debugExit(status: 0x42))
///     }
/// }
/// ```
///
/// Two ways to get a copy:
/// - `withFreshVM { vm in ... }` lends a VM from a pool, put back to the
///   fixture point with `TestVM.reset(to:)` — only the pages dirtied since
///   are copied — before each use. The cheapest per test.
/// - `clone()` makes a new VM (`TestVM(clone:)`) the caller owns.
///
/// Thread safety: the fixture is `Sendable` and every method may be called
/// from tests running in parallel. Each caller gets a VM of its own: a VM is
/// in the pool only while no test uses it, and a caller that finds the pool
/// empty gets a new clone, so the pool grows to the number of tests that ran
/// at once and no further. A `TestVM` itself is not thread-safe: use it on
/// the thread (or task) that got it, and do not keep it past `withFreshVM`.
public final class TestVMFixture: Sendable {
    /// The fixture point.
    public let image: TestVMImage
    // The VMs no test is using, each a clone of `image` in whatever state its
    // last test left it. A `TestVM` is not `Sendable`; handing one from the
    // lock to exactly one caller at a time is what makes sharing them safe.
    private let idle = ThreadLock<[TestVM]>([])
    private let counters = ThreadLock(Statistics())

    /// How the fixture served its callers so far.
    public struct Statistics: Hashable, Sendable {
        /// Machines made from the image (by `clone()` and for the pool).
        public var clones = 0
        /// Resets of a pooled VM by `withFreshVM`.
        public var resets = 0
        /// Pages copied back from the image by those resets.
        public var pagesRestored = 0
        /// VMs dropped after `withFreshVM` rather than reused: with scripted
        /// devices attached, with more than one vCPU (which `reset(to:)`
        /// cannot put back), or whose reset failed.
        public var discarded = 0
    }

    /// What the fixture's VMs log to.
    public let logger: Logger

    /// A fixture at `image`, whose VMs log to `logger`.
    public init(image: TestVMImage, logger: Logger = TestVM.defaultLogger) {
        self.image = image
        self.logger = logger
    }

    /// Boots `guest` in a new `TestVM` (arguments as `TestVM.init`), lets
    /// `reachFixturePoint` run it to the point the tests start from — a
    /// hypercall, a breakpoint, an exit, some output — and saves it there
    /// (`TestVM.snapshot()`, which handles the pending exit first). The
    /// booted VM is then dropped. Throws a `VMTestError`, or what
    /// `reachFixturePoint` throws.
    public convenience init(
        booting guest: MachineConfiguration.Guest, memory: UInt64 = 16 << 20, vcpus: Int = 1,
        platform: MachineConfiguration.Platform? = nil, logger: Logger = TestVM.defaultLogger,
        until reachFixturePoint: (TestVM) throws -> Void
    ) throws {
        let vm = try TestVM(guest, memory: memory, vcpus: vcpus, platform: platform, logger: logger)
        try reachFixturePoint(vm)
        self.init(image: try vm.snapshot(), logger: logger)
    }

    /// A fixture for a guest from `firmware/` or a test target's `Guests/`.
    public convenience init(
        _ firmware: FirmwareImage, memory: UInt64 = 16 << 20, vcpus: Int = 1, platform: MachineConfiguration.Platform? = nil,
        logger: Logger = TestVM.defaultLogger, until reachFixturePoint: (TestVM) throws -> Void
    ) throws {
        try self.init(
            booting: .firmware(firmware), memory: memory, vcpus: vcpus, platform: platform, logger: logger, until: reachFixturePoint)
    }

    /// A new VM at the fixture point, the caller's to keep (`TestVM(clone:)`).
    public func clone() throws(VMTestError) -> TestVM {
        let vm = try TestVM(clone: image, logger: logger)
        counters.withLock { $0.clones += 1 }
        return vm
    }

    /// Runs `body` with a VM at the fixture point that no other caller is
    /// using, then takes it back for the next caller (which gets it reset).
    ///
    /// The VM is a pooled clone reset to the image (`TestVM.reset(to:)`: the
    /// pages dirtied since, registers, device state; serial output, trace and
    /// hypercall log emptied), or a new clone when every pooled one is in use
    /// (always, for a machine with more than one vCPU).
    /// After `body` its `onHypercall` handler is dropped, guest assertions
    /// fail the run again and its `defaultTimeout` is put back, and a VM `body` put scripted devices on is
    /// not reused. `body` must not keep the VM.
    public func withFreshVM<R>(_ body: (TestVM) throws -> R) throws -> R {
        let vm = try checkOut()
        let timeout = vm.defaultTimeout
        defer {
            vm.defaultTimeout = timeout
            checkIn(vm)
        }
        return try body(vm)
    }

    /// How the fixture served its callers so far.
    public var statistics: Statistics { counters.withLock { $0 } }

    /// Closes the pooled VMs no test is using (their KVM file descriptors and
    /// RAM). The fixture stays usable: later callers get new clones.
    public func releaseIdleVMs() {
        let released = idle.withLock { pool in
            defer { pool.removeAll() }
            return pool
        }
        _ = released  // dropped here, outside the lock
    }

    private func checkOut() throws(VMTestError) -> TestVM {
        while let vm = idle.withLock({ $0.popLast() }) {
            do {
                let reset = try vm.reset(to: image)
                counters.withLock {
                    $0.resets += 1
                    $0.pagesRestored += reset.pagesRestored
                }
                return vm
            } catch {
                // A VM that cannot be put back (a test left its other vCPUs
                // running, say) is not reused; the next one or a clone is.
                counters.withLock { $0.discarded += 1 }
            }
        }
        return try clone()
    }

    private func checkIn(_ vm: TestVM) {
        guard !vm.hasScriptedDevices, vm.machine.vcpuCount == 1 else {
            counters.withLock { $0.discarded += 1 }
            return
        }
        vm.hypercallHandler = nil
        vm.guestAssertionsFailTheRun = true
        idle.withLock { $0.append(vm) }
    }
}
