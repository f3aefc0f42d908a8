/// A rate limiter's bucket: `size` tokens refilled every `refill_time` ms.
public struct TokenBucket: StrictResource, Hashable {
    public var size: Int
    public var oneTimeBurst: Int?
    public var refillTime: Int

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case size
        case oneTimeBurst = "one_time_burst"
        case refillTime = "refill_time"
    }

    public func validate() throws(APIFault) {
        try Validation.range(size, 0...Int.max, field: "size")
        try Validation.range(oneTimeBurst, 0...Int.max, field: "one_time_burst")
        try Validation.range(refillTime, 0...Int.max, field: "refill_time")
    }
}
