/// A device's rate limiter: bytes (`bandwidth`) and operations (`ops`).
public struct RateLimiter: StrictResource, Hashable {
    public var bandwidth: TokenBucket?
    public var ops: TokenBucket?

    public enum CodingKeys: String, CodingKey, CaseIterable { case bandwidth, ops }
    public static var nestedResources: [String: any StrictResource.Type] { ["bandwidth": TokenBucket.self, "ops": TokenBucket.self] }

    public func validate() throws(APIFault) {
        try bandwidth?.validate()
        try ops?.validate()
    }
}
