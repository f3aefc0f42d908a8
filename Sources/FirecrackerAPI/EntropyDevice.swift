/// `PUT /entropy`: a virtio-rng device.
public struct EntropyDevice: StrictResource, Hashable {
    public var rateLimiter: RateLimiter?

    public enum CodingKeys: String, CodingKey, CaseIterable { case rateLimiter = "rate_limiter" }
    public static var nestedResources: [String: any StrictResource.Type] { ["rate_limiter": RateLimiter.self] }

    public func validate() throws(APIFault) { try rateLimiter?.validate() }
}
