import VMCore

/// The outcome of a string read (`rep ins`) on the port bus.
public struct BusStringReadResult: Hashable, Sendable {
    /// The elements read, in order, `size` bytes each, little-endian.
    public var data: IOData
    /// Whether no device answered, and whether that is news (the first element decides).
    public var unclaimed: UnclaimedAccess

    @inlinable public init(data: IOData, unclaimed: UnclaimedAccess) {
        self.data = data
        self.unclaimed = unclaimed
    }
}
