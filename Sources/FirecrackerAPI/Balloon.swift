/// `PUT /balloon` (and its `GET`): a virtio-balloon device.
public struct Balloon: StrictResource, Hashable {
    public var amountMib: Int
    public var deflateOnOom: Bool
    public var statsPollingIntervalS: Int?
    public var freePageHinting: Bool?
    public var freePageReporting: Bool?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case amountMib = "amount_mib"
        case deflateOnOom = "deflate_on_oom"
        case statsPollingIntervalS = "stats_polling_interval_s"
        case freePageHinting = "free_page_hinting"
        case freePageReporting = "free_page_reporting"
    }

    public func validate() throws(APIFault) {
        try Validation.range(amountMib, 0...(1 << 20), field: "amount_mib")
        try Validation.range(statsPollingIntervalS, 0...Int(UInt16.max), field: "stats_polling_interval_s")
    }
}
