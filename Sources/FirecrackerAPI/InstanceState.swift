/// Where a machine driven by the API is in its life, as `GET /` names it.
public enum InstanceState: String, Hashable, Sendable {
    case notStarted = "Not started"
    case running = "Running"
    case paused = "Paused"

    /// What a request needs of the machine's life.
    public enum Requirement: Sendable {
        /// Configuration that only makes sense before `InstanceStart`.
        case preBoot
        /// Operations on a started machine.
        case postBoot
        /// Allowed at any time.
        case any
    }

    /// Refuses a request that needs another state, with Firecracker's message.
    public func check(_ requirement: Requirement) throws(APIFault) {
        switch (requirement, self) {
        case (.preBoot, .running), (.preBoot, .paused): throw .notSupportedAfterStart
        case (.postBoot, .notStarted): throw .notSupportedBeforeStart
        default: return
        }
    }
}
