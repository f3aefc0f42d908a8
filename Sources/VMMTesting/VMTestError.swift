import GuestMemory
import SwiftVMM
import VMCore

/// Why a `TestVM` call failed, with the guest's RIP and the last exits, so a
/// failing test's report says where the guest was and what it had been doing.
public struct VMTestError: Error, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// Building or running the machine failed.
        case machine(String)
        /// The guest was still running when the deadline passed.
        case timeout(Duration, waitingFor: String)
        /// The machine stopped (halt, shutdown, debug exit, ...) before the awaited exit came.
        case stoppedBeforeMatch(StopReason, waitingFor: String)
        /// The guest reported a failed assertion through a hypercall.
        case guestAssertionFailed(GuestAssertion)
        /// `answer(_:)` was called with no read or hypercall pending.
        case noPendingRead(String)
        /// `awaitSync(expected)` found the guest syncing at another stage.
        case unexpectedSync(expected: UInt64, got: UInt64)
        /// A guest-memory access the test asked for was out of bounds.
        case memory(GuestMemoryError)
        /// Something the test asked for cannot be done (e.g. a fifth hardware breakpoint).
        case invalidRequest(String)
    }

    public var kind: Kind
    /// The guest's RIP when the error was raised, if it could be read.
    public var rip: UInt64?
    /// The last exits, oldest first.
    public var traceTail: String

    public var description: String {
        let what: String
        switch kind {
        case .machine(let message): what = message
        case .timeout(let timeout, let awaited): what = "timed out after \(timeout) waiting for \(awaited)"
        case .stoppedBeforeMatch(let reason, let awaited): what = "the machine stopped (\(reason)) before \(awaited)"
        case .guestAssertionFailed(let assertion): what = assertion.description
        case .unexpectedSync(let expected, let got): what = "awaited the guest's sync at stage \(expected), but it synced at stage \(got)"
        case .noPendingRead(let message): what = message
        case .memory(let error): what = error.description
        case .invalidRequest(let message): what = message
        }
        let location = rip.map { " (guest RIP \(hex($0)))" } ?? ""
        return "\(what)\(location)\nlast exits:\n\(traceTail.isEmpty ? "(none)" : traceTail)"
    }
}
