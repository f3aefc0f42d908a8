/// `PATCH /drives/{drive_id}`: a new backing file or rate limiter after boot.
public struct PartialDrive: StrictResource, Hashable {
    public var driveId: String
    public var pathOnHost: String?
    public var rateLimiter: RateLimiter?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case driveId = "drive_id"
        case pathOnHost = "path_on_host"
        case rateLimiter = "rate_limiter"
    }
    public static var nestedResources: [String: any StrictResource.Type] { ["rate_limiter": RateLimiter.self] }

    public func validate() throws(APIFault) {
        try Validation.id(driveId, field: "drive_id")
        try Validation.path(pathOnHost, field: "path_on_host")
        try rateLimiter?.validate()
    }
}
