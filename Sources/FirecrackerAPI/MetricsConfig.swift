/// `PUT /metrics`: the file or FIFO `FlushMetrics` writes JSON counters to.
public struct MetricsConfig: StrictResource, Hashable {
    public var metricsPath: String

    public enum CodingKeys: String, CodingKey, CaseIterable { case metricsPath = "metrics_path" }

    public func validate() throws(APIFault) { try Validation.path(metricsPath, field: "metrics_path") }
}
