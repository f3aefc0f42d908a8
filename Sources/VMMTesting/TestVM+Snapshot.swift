import Devices
import Logging
import SwiftVMM
import VMCore

extension TestVM {
    // MARK: Snapshots in memory

    /// Saves this VM where it stands — the fixture point — for fresh copies
    /// to start from (`TestVM(clone:)`, `reset(to:)`, `TestVMFixture`).
    ///
    /// The pending exit is handled first, as the next run call would handle
    /// it: a pending OUT or MMIO write goes to its device, a pending hypercall
    /// gets the test's `respond(_:)`, the `onHypercall` handler's answer or 0,
    /// and a guest stopped at a breakpoint steps over it. The image is at the
    /// instruction after, so a copy never repeats the access. A pending IN or
    /// MMIO read the test has not answered is an error: which value the copies
    /// start from must be the test's choice (`answer(_:)`, or
    /// `handlePendingExit()` to let the device answer). If handling the exit
    /// stops the machine (a debug exit, a `done` hypercall), the image is
    /// of the machine after it, and a copy continues with the next instruction.
    ///
    /// With more than one vCPU the others are paused while the state is taken.
    /// This VM is unchanged and may go on.
    public func snapshot() throws(VMTestError) -> TestVMImage {
        if let exit = pending, !pendingAnswered {
            switch exit {
            case .ioIn(let port, let size, _):
                throw error(
                    .noPendingRead(
                        "snapshot() with an unanswered \(size)-byte IN from port \(hex(UInt64(port))) pending: answer(_:) it first, or handlePendingExit() to let the device answer"
                    ))
            case .mmioRead(let address, let size):
                throw error(
                    .noPendingRead(
                        "snapshot() with an unanswered \(size)-byte MMIO read at \(hex(address.rawValue)) pending: answer(_:) it first, or handlePendingExit() to let the device answer"
                    ))
            default: break
            }
        }
        _ = try settlePending()
        let image: MachineImage
        do {
            if machine.vcpuCount > 1 {
                machine.pause()
                defer { machine.resume() }
                image = try machine.makeImage()
            } else {
                image = try machine.makeImage()
            }
        } catch { throw self.error(.machine("cannot snapshot the machine: \(error.description)")) }
        return TestVMImage(
            machine: image, serialBytes: serialBytes, hypercalls: hypercalls, guestLog: guestLog, trace: trace, debug: debug,
            deferredExit: deferredExit)
    }

    /// A fresh VM continuing from `image`: a new machine whose RAM is a
    /// private copy-on-write mapping of the image's (so making one costs
    /// the same whatever the RAM size), with dirty-page tracking on so that
    /// `reset(to:)` can put it back. The breakpoints in force at the fixture
    /// point are in force here. Its `serialOutput`, `hypercalls`, `guestLog`
    /// and `trace` start empty: the boot's are the image's. The hypercall
    /// handler and scripted devices of the VM the image was taken from are
    /// not carried over (closures and device objects are the test's); set
    /// them again on the clone.
    ///
    /// Safe from any thread, any number of times at once.
    public convenience init(clone image: TestVMImage, logger: Logger = TestVM.defaultLogger) throws(VMTestError) {
        let output = SerialBufferOutput()
        let machine: Machine
        do { machine = try Machine.clone(image.machine, io: MachineIO(serialOutput: output, logger: logger)) } catch {
            throw VMTestError(kind: .machine("cannot clone the image: \(error.description)"), rip: nil, traceTail: "")
        }
        try self.init(machine: machine)
        debug = image.debug
        deferredExit = image.deferredExit
        if image.debug != DebugState() { try applyDebugState() }
    }

    /// Puts this VM back to `image`, so that the test can run again from the
    /// fixture point. The VM must be a clone of `image` (`TestVM(clone:)`).
    ///
    /// Restored: every vCPU's registers (general, special, FPU/SSE, MSRs,
    /// LAPIC, pending events), the VM's interrupt controllers, PIT and
    /// clock, every device's state (UARTs and their FIFOs, RTC, i8042, ...),
    /// and exactly the RAM pages written since the clone or the last reset —
    /// by the guest (KVM's dirty log) or by the test (`write`,
    /// `writeInteger`, software breakpoints) — copied back from the image.
    /// The breakpoints and single-stepping return to the image's.
    ///
    /// Cleared, to start again from the fixture point: the pending exit
    /// (an unanswered read is dropped), `serialOutput`, `hypercalls`,
    /// `guestLog` and `trace` (which start empty, as on a clone).
    ///
    /// Kept, as things the test set on this VM rather than guest state: the
    /// `onHypercall` handler, scripted devices (`onPorts`, `onMMIO`,
    /// `attach`: `hasScriptedDevices` tells) and `defaultTimeout`.
    /// `TestVMFixture.withFreshVM` never hands on a VM with scripted devices
    /// and drops the handler between tests.
    ///
    /// Returns how many pages were copied back. Only a machine with one vCPU
    /// can be reset (the others of a bigger one run on threads of their own,
    /// which the test does not drive); give each test a clone instead.
    @discardableResult
    public func reset(to image: TestVMImage) throws(VMTestError) -> ResetStatistics {
        guard machine.trackDirtyPages else {
            throw error(
                .invalidRequest(
                    "reset(to:) needs a VM made by TestVM(clone:), whose machine logs the pages it dirties; this one does not"))
        }
        guard machine.vcpuCount == 1 else {
            throw error(
                .invalidRequest(
                    "reset(to:) puts back machines with one vCPU; this one has \(machine.vcpuCount), whose other vCPUs run on threads of their own: give each test a clone"
                ))
        }
        let statistics: ResetStatistics
        do {
            // `Machine.reset(to:)` lets KVM finish the access the vCPU last
            // exited for before it puts the state back.
            statistics = try machine.reset(to: image.machine)
        } catch { throw self.error(.machine("cannot reset the machine: \(error.description)")) }
        pending = nil
        pendingAnswered = false
        deferredExit = image.deferredExit
        trace = ExitTrace(capacity: trace.capacity)
        serialOutput.removeAll()
        hypercalls = []
        guestLog = []
        let hadDebugState = debug != DebugState()
        debug = image.debug
        if hadDebugState || debug != DebugState() { try applyDebugState() }
        return statistics
    }
}
