import Migration

/// Why a live migration failed. Until the source has sent `commit`, every
/// case leaves the guest running on the source (resumed if it was paused);
/// `outcomeUnknown` is the one case after it.
public enum MigrationError: Error, Sendable, CustomStringConvertible {
    /// The stream broke or carried something wrong (a checksum, a length, a version).
    case wire(MigrationWireError)
    /// The other side gave up with this message.
    case peer(String)
    /// This side refused the other's machine or host (CPU features, RAM, version).
    case refused(String)
    /// A message arrived out of turn.
    case unexpected(message: String, expected: String)
    /// The machine could not be paused, captured or built.
    case machine(MachineError)
    /// The migration did not complete within its timeout.
    case timedOut(Duration)
    /// Another migration of this machine is running.
    case alreadyMigrating
    /// The source gave the machine up (`commit`) but the destination never
    /// said it runs: the guest stays paused here, for an operator to resume
    /// it here (if the destination is gone) or leave it.
    case outcomeUnknown(String)

    public var description: String {
        switch self {
        case .wire(let error): return "migration stream: \(error)"
        case .peer(let message): return "the other side failed: \(message)"
        case .refused(let reason): return "refused: \(reason)"
        case .unexpected(let message, let expected): return "unexpected \(message) message (expected \(expected))"
        case .machine(let error): return "machine: \(error)"
        case .timedOut(let timeout): return "the migration did not complete within \(timeout)"
        case .alreadyMigrating: return "a migration of this machine is already running"
        case .outcomeUnknown(let reason):
            return "committed, but the destination did not confirm that it runs (\(reason)); the guest stays paused here"
        }
    }
}
