/// What a completed migration took.
public struct MigrationReport: Hashable, Sendable {
    /// Pre-copy rounds after the first pass.
    public var rounds: Int
    /// Bytes on the wire (both stream headers and every frame this side sent).
    public var bytesSent: UInt64
    /// Pages sent with data, and as zero markers.
    public var pagesSent: UInt64
    public var zeroPages: UInt64
    /// From the first byte to the destination's "running".
    public var totalTime: Duration
    /// From pausing the guest here to the destination's "running".
    public var downtime: Duration
    /// The highest throttle auto-converge applied (0 if none).
    public var throttlePercent: Int
    /// Whether RAM went over as a memfd instead of pages.
    public var memoryHandedOver: Bool
}
