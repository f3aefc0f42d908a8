import Synchronization
import VMCore

/// The pages the VMM itself wrote through `GuestMemory` (loaders, devices,
/// a test's `write`), which KVM's dirty log never sees: it only tracks the
/// guest's writes. A reset to an image or a migration round needs both.
///
/// Off until `start(pageCounts:)`, and then one lock per write call, which
/// is rare next to the guest's own writes.
final class HostWriteLog: Sendable {
    private let enabled = Atomic<Bool>(false)
    /// One bitmap per region, in `KVM_GET_DIRTY_LOG`'s layout.
    private let bitmaps = ThreadLock<[[UInt64]]>([])

    /// Starts logging for regions of these page counts (restarting clears the log).
    func start(pageCounts: [Int]) {
        bitmaps.withLock { $0 = pageCounts.map { [UInt64](repeating: 0, count: ($0 + 63) / 64) } }
        enabled.store(true, ordering: .releasing)
    }

    var isEnabled: Bool { enabled.load(ordering: .acquiring) }

    /// Marks pages `first...last` of region `region`.
    func mark(region: Int, firstPage: Int, lastPage: Int) {
        guard isEnabled, firstPage <= lastPage else { return }
        bitmaps.withLock { bitmaps in
            guard region < bitmaps.count else { return }
            for page in firstPage...lastPage where page / 64 < bitmaps[region].count {
                bitmaps[region][page / 64] |= 1 << UInt64(page % 64)
            }
        }
    }

    /// The bitmaps logged since the last call, which clears them.
    func take() -> [[UInt64]] {
        bitmaps.withLock { bitmaps in
            defer { bitmaps = bitmaps.map { [UInt64](repeating: 0, count: $0.count) } }
            return bitmaps
        }
    }
}
