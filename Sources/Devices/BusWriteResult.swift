import VMCore

/// The outcome of a write (single or string) on a bus.
public struct BusWriteResult: Hashable, Sendable {
    /// What the device asked of the machine, if anything. Always `nil` if `unclaimed`.
    public var request: DeviceRequest?
    /// Whether no device took the write, and whether that is news.
    public var unclaimed: UnclaimedAccess

    @inlinable public init(request: DeviceRequest?, unclaimed: UnclaimedAccess) {
        self.request = request
        self.unclaimed = unclaimed
    }
}
