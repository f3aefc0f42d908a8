import SwiftVMM
import VMCore

/// A `TestVM` saved in memory at a point its test chose — the *fixture
/// point* — from which any number of fresh VMs start: `TestVM(clone:)` makes
/// one, `reset(to:)` puts one back.
///
/// It holds the machine (`MachineImage`: every vCPU's registers, the VM's and
/// the devices' state, and RAM in a sealed memfd) and what the test had seen
/// up to the fixture point: the guest's COM1 output, hypercalls and log, and
/// the exit trace. Those are the *boot's* record: a VM made from the image
/// starts its own `serialOutput`, `hypercalls`, `guestLog` and `trace` empty,
/// so that each test sees only what happened after the fixture point.
///
/// Immutable and `Sendable`: tests running in parallel clone the same image.
/// `TestVM.snapshot()` makes one; `TestVMFixture` makes and shares one.
public final class TestVMImage: Sendable {
    /// The machine, as `Machine.clone(_:io:)` and `Machine.reset(to:)` take it.
    public let machine: MachineImage
    /// What the guest wrote to COM1 before the fixture point.
    public let serialBytes: [UInt8]
    /// The hypercalls the guest made before the fixture point, in order.
    public let hypercalls: [Hypercall]
    /// What the guest logged through the `log` hypercall before the fixture point.
    public let guestLog: [String]
    /// The exits before the fixture point (`trace.count` of them).
    public let trace: ExitTrace
    /// The breakpoints and single-stepping in force at the fixture point;
    /// a software breakpoint's `int3` is in the image's RAM.
    let debug: DebugState
    /// A debug exit the snapshot's settling took from KVM (single-stepping
    /// over a breakpoint) that the next run call returns.
    let deferredExit: VMExit?

    init(
        machine: MachineImage, serialBytes: [UInt8], hypercalls: [Hypercall], guestLog: [String], trace: ExitTrace, debug: DebugState,
        deferredExit: VMExit?
    ) {
        self.machine = machine
        self.serialBytes = serialBytes
        self.hypercalls = hypercalls
        self.guestLog = guestLog
        self.trace = trace
        self.debug = debug
        self.deferredExit = deferredExit
    }

    /// What the guest wrote to COM1 before the fixture point, as text (invalid UTF-8 replaced).
    public var serialText: String { String(decoding: serialBytes, as: UTF8.self) }
}
