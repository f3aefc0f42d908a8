/// `PATCH /balloon/statistics`: a new polling interval.
public struct BalloonStatsUpdate: StrictResource, Hashable {
    public var statsPollingIntervalS: Int

    public enum CodingKeys: String, CodingKey, CaseIterable { case statsPollingIntervalS = "stats_polling_interval_s" }

    public func validate() throws(APIFault) {
        try Validation.range(statsPollingIntervalS, 0...Int(UInt16.max), field: "stats_polling_interval_s")
    }
}
