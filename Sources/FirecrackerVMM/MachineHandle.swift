import SwiftVMM

/// A machine handed between the API's queue and the thread that runs it.
///
/// Unchecked: `Machine`'s `pause()`, `resume()`, `runState` and snapshots are
/// safe from any thread but a vCPU's, and the API's queue uses nothing else
/// while the runner thread is inside `run`.
public final class MachineHandle: @unchecked Sendable {
    public let machine: Machine

    public init(_ machine: Machine) { self.machine = machine }
}
