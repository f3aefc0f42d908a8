/// Where a live migration is: `GET /migrate` and `swiftvmm migrate`'s progress line.
public struct MigrationProgress: Codable, Hashable, Sendable {
    /// "setup", "precopy", "stop-and-copy" (or "handover", RAM going over as a memfd), "committing", "completed" or "failed".
    public var phase: String = "setup"
    /// The pre-copy round (0 is the first pass over all RAM).
    public var round: Int = 0
    /// Pages sent with their data, and pages sent as zero markers.
    public var pagesSent: UInt64 = 0
    public var zeroPages: UInt64 = 0
    /// Bytes on the wire so far.
    public var bytesSent: UInt64 = 0
    /// Pages the guest dirtied per second in the last round.
    public var dirtyPagesPerSecond: UInt64 = 0
    /// The bandwidth measured in the last round, bytes per second.
    public var bandwidth: UInt64 = 0
    /// Pages still to send, and how long the pause would be if it happened now.
    public var remainingPages: UInt64 = 0
    public var estimatedDowntimeMs: Double = 0
    /// How much auto-converge slows the vCPUs down (0 to 99 %).
    public var throttlePercent: Int = 0
    /// The guest's pause, from the last source instruction to the destination's "running" (once completed).
    public var downtimeMs: Double? = nil
    /// The whole migration's time so far.
    public var elapsedMs: Double = 0
    /// Why it failed, once it has.
    public var error: String? = nil
    /// Whether RAM went over as a memfd (`SCM_RIGHTS`) instead of as pages: a local live upgrade.
    public var memoryHandedOver: Bool = false

    public init() {}

    enum CodingKeys: String, CodingKey {
        case phase, round, error
        case pagesSent = "pages_sent"
        case zeroPages = "zero_pages"
        case bytesSent = "bytes_sent"
        case dirtyPagesPerSecond = "dirty_pages_per_second"
        case bandwidth = "bandwidth_bytes_per_second"
        case remainingPages = "remaining_pages"
        case estimatedDowntimeMs = "estimated_downtime_ms"
        case throttlePercent = "throttle_percent"
        case downtimeMs = "downtime_ms"
        case elapsedMs = "elapsed_ms"
        case memoryHandedOver = "memory_handed_over"
    }

    /// One line for a terminal.
    public var line: String {
        var text =
            "migration \(phase): round \(round), \(pagesSent) pages sent (+\(zeroPages) zero), \(bytesSent >> 20) MiB, "
            + "dirty \(dirtyPagesPerSecond) pages/s, remaining \(remainingPages) pages, estimated downtime \(Int(estimatedDowntimeMs)) ms, throttle \(throttlePercent)%"
        if memoryHandedOver { text += ", RAM handed over as a memfd" }
        if let downtimeMs { text += ", downtime \(String(format3(downtimeMs))) ms" }
        if let error { text += ": \(error)" }
        return text
    }

    private func format3(_ value: Double) -> String { String(Double(Int(value * 1000)) / 1000) }
}
