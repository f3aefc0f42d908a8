import Dispatch
import Foundation
import SwiftVMM

/// The progress of the controller's live migration, shared between the
/// thread that runs it and the API's queue.
final class MigrationStatus: @unchecked Sendable {
    // Unchecked: every stored var is touched with `lock` held.
    private let lock = NSLock()
    private var current = MigrationProgress()
    private var running = false
    private let finished = DispatchSemaphore(value: 0)

    init() { current.phase = "none" }

    /// Marks a migration as started; false if one runs.
    func begin() -> Bool {
        lock.withLock {
            guard !running else { return false }
            running = true
            current = MigrationProgress()
            return true
        }
    }

    func update(_ progress: MigrationProgress) { lock.withLock { current = progress } }

    func finish(_ error: String?) {
        lock.withLock {
            running = false
            if let error {
                current.phase = "failed"
                current.error = error
            }
        }
        finished.signal()
    }

    var progress: MigrationProgress { lock.withLock { current } }

    func waitUntilFinished(timeout: Duration) {
        let nanoseconds = Int(timeout.components.seconds) * 1_000_000_000 + Int(timeout.components.attoseconds / 1_000_000_000)
        _ = finished.wait(timeout: .now() + .nanoseconds(nanoseconds))
    }
}
