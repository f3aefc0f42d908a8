/// `PUT /migrate`: move the running machine to a destination swiftvmm
/// (`swiftvmm serve --incoming`). swiftvmm's own resource; Firecracker has none.
public struct MigrationParams: StrictResource, Hashable {
    /// `unix:PATH` or `tcp:HOST:PORT`.
    public var destinationURL: String
    /// The longest pause of the guest the last round may cost (default 300).
    public var downtimeMs: Int?
    /// At most this many MiB a second on the wire (default: no limit).
    public var bandwidthMibS: Int?
    /// The migration fails, the guest going on here, after this long (default 120).
    public var timeoutS: Int?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case destinationURL = "destination_url"
        case downtimeMs = "downtime_ms"
        case bandwidthMibS = "bandwidth_mib_s"
        case timeoutS = "timeout_s"
    }

    public init(destinationURL: String, downtimeMs: Int? = nil, bandwidthMibS: Int? = nil, timeoutS: Int? = nil) {
        self.destinationURL = destinationURL
        self.downtimeMs = downtimeMs
        self.bandwidthMibS = bandwidthMibS
        self.timeoutS = timeoutS
    }

    public func validate() throws(APIFault) {
        guard destinationURL.hasPrefix("unix:") || destinationURL.hasPrefix("tcp:") else {
            throw APIFault("destination_url: expected unix:PATH or tcp:HOST:PORT, found '\(destinationURL)'")
        }
        try Validation.range(downtimeMs, 1...600_000, field: "downtime_ms")
        try Validation.range(bandwidthMibS, 1...1_048_576, field: "bandwidth_mib_s")
        try Validation.range(timeoutS, 1...86_400, field: "timeout_s")
    }
}
