/// Where a machine is in its life.
public enum MachineRunState: String, Hashable, Sendable, Codable {
    /// Built (or restored) and not run yet.
    case notStarted
    /// A thread is running its vCPUs.
    case running
    /// Every vCPU that was running is parked at an instruction boundary, with
    /// its last I/O completed; `resume()` lets them go on.
    case paused
    /// A run ended (the guest stopped, a deadline passed, a stop was asked
    /// for); a later `run()` may continue it.
    case stopped
}
