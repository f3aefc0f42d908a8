/// What a destination accepts (`swiftvmm serve --incoming`).
public struct IncomingMigrationOptions: Hashable, Sendable {
    /// The most guest RAM it takes; a larger machine is refused before any page moves.
    public var maximumMemory: UInt64 = 1 << 40
    /// How long to wait for the source's next message before giving up.
    public var receiveTimeout: Duration = .seconds(30)
    /// A CPU digest to claim instead of this host's (tests of the mismatch check).
    public var cpuDigestOverride: String? = nil
    /// Whether to take a local source's RAM as a memfd (`SCM_RIGHTS`) when it
    /// offers one; otherwise the source copies its pages as to another host.
    public var acceptsMemoryHandover = true

    public init(maximumMemory: UInt64 = 1 << 40, receiveTimeout: Duration = .seconds(30)) {
        self.maximumMemory = maximumMemory
        self.receiveTimeout = receiveTimeout
    }
}
