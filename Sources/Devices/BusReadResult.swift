/// The outcome of a single read on a bus.
public struct BusReadResult: Hashable, Sendable {
    /// The value read, masked to the access size. All ones if `unclaimed`.
    public var value: UInt64
    /// Whether no device answered, and whether that is news.
    public var unclaimed: UnclaimedAccess

    @inlinable public init(value: UInt64, unclaimed: UnclaimedAccess) {
        self.value = value
        self.unclaimed = unclaimed
    }
}
