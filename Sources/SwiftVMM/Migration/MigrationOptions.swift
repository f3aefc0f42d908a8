/// How a live migration may go: the pause it may cost the guest, the
/// bandwidth it may use, how long it may take, and whether it may slow the
/// guest down to converge. `PUT /migrate`'s body and `swiftvmm migrate`'s flags.
public struct MigrationOptions: Hashable, Sendable {
    /// The longest pause the last round may cost the guest: pre-copy rounds go
    /// on until the pages left would take no longer at the measured bandwidth
    /// (300 ms, QEMU's and Cloud Hypervisor's default).
    public var downtimeLimit: Duration = .milliseconds(300)
    /// At most this many bytes a second on the wire; nil for no limit.
    public var bandwidthLimit: UInt64? = nil
    /// The migration fails (the guest goes on here) if it has not completed in this time.
    public var timeout: Duration = .seconds(120)
    /// Whether to slow the vCPUs down when the guest dirties memory faster
    /// than it can be sent (20 % at first, 10 % more a step, at most 99 %).
    public var autoConverge = true
    /// Hand guest RAM over as a memfd (`SCM_RIGHTS`) when the destination is
    /// on this host (a Unix socket) and RAM is memfd-backed, instead of copying pages.
    public var memoryHandover = true
    /// How long to wait for the destination's answers.
    public var replyTimeout: Duration = .seconds(30)

    public init(
        downtimeLimit: Duration = .milliseconds(300), bandwidthLimit: UInt64? = nil, timeout: Duration = .seconds(120),
        autoConverge: Bool = true
    ) {
        self.downtimeLimit = downtimeLimit
        self.bandwidthLimit = bandwidthLimit
        self.timeout = timeout
        self.autoConverge = autoConverge
    }
}
