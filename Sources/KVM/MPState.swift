internal import CKVM

/// A vCPU's multiprocessing state (`KVM_MP_STATE_*`): whether it runs, halts,
/// or waits for the INIT/SIPI sequence that starts an application processor.
public enum MPState: UInt32, Codable, Hashable, Sendable, CaseIterable {
    /// Running, or ready to run.
    case runnable = 0
    /// Waiting for INIT and SIPI: how application processors start on a PC.
    case uninitialized = 1
    /// Received INIT; waiting for SIPI.
    case initReceived = 2
    /// Executed `hlt`; an interrupt wakes it (in-kernel LAPIC only).
    case halted = 3
    /// Received SIPI; starts at the SIPI vector on its next run.
    case sipiReceived = 4
    // s390 only (stopped, checkStop, operating, load); listed so that every
    // value KVM defines decodes.
    case stopped = 5
    case checkStop = 6
    case operating = 7
    case load = 8
    /// An SEV-ES application processor parked by the guest's AP reset hold.
    case apResetHold = 9
    /// Suspended by a Xen `SCHEDOP_poll`-style hypercall.
    case suspended = 10

    // The raw values above are KVM's ABI; this keeps them honest against the header.
    static let headerValues: [MPState: Int32] = [
        .runnable: KVM_MP_STATE_RUNNABLE, .uninitialized: KVM_MP_STATE_UNINITIALIZED,
        .initReceived: KVM_MP_STATE_INIT_RECEIVED, .halted: KVM_MP_STATE_HALTED,
        .sipiReceived: KVM_MP_STATE_SIPI_RECEIVED, .stopped: KVM_MP_STATE_STOPPED,
        .checkStop: KVM_MP_STATE_CHECK_STOP, .operating: KVM_MP_STATE_OPERATING, .load: KVM_MP_STATE_LOAD,
        .apResetHold: KVM_MP_STATE_AP_RESET_HOLD, .suspended: KVM_MP_STATE_SUSPENDED,
    ]
}
