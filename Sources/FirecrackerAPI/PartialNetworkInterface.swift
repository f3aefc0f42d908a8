/// `PATCH /network-interfaces/{iface_id}`: new rate limiters after boot.
public struct PartialNetworkInterface: StrictResource, Hashable {
    public var ifaceId: String
    public var rxRateLimiter: RateLimiter?
    public var txRateLimiter: RateLimiter?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case ifaceId = "iface_id"
        case rxRateLimiter = "rx_rate_limiter"
        case txRateLimiter = "tx_rate_limiter"
    }
    public static var nestedResources: [String: any StrictResource.Type] {
        ["rx_rate_limiter": RateLimiter.self, "tx_rate_limiter": RateLimiter.self]
    }

    public func validate() throws(APIFault) {
        try Validation.id(ifaceId, field: "iface_id")
        try rxRateLimiter?.validate()
        try txRateLimiter?.validate()
    }
}
