/// `PUT /drives/{drive_id}`: a virtio-block disk.
public struct Drive: StrictResource, Hashable {
    public var driveId: String
    public var partuuid: String?
    public var isRootDevice: Bool
    public var cacheType: String?
    public var isReadOnly: Bool?
    public var pathOnHost: String?
    public var rateLimiter: RateLimiter?
    public var ioEngine: String?
    public var socket: String?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case driveId = "drive_id"
        case partuuid
        case isRootDevice = "is_root_device"
        case cacheType = "cache_type"
        case isReadOnly = "is_read_only"
        case pathOnHost = "path_on_host"
        case rateLimiter = "rate_limiter"
        case ioEngine = "io_engine"
        case socket
    }
    public static var nestedResources: [String: any StrictResource.Type] { ["rate_limiter": RateLimiter.self] }

    public func validate() throws(APIFault) {
        try Validation.id(driveId, field: "drive_id")
        try Validation.oneOf(cacheType, ["Unsafe", "Writeback"], field: "cache_type")
        try Validation.oneOf(ioEngine, ["Sync", "Async"], field: "io_engine")
        try Validation.path(pathOnHost, field: "path_on_host")
        try Validation.path(socket, field: "socket")
        if pathOnHost == nil, socket == nil { throw APIFault("path_on_host: missing; a virtio-block drive needs a backing file") }
        if pathOnHost != nil, socket != nil {
            throw APIFault("socket: cannot be given with path_on_host (vhost-user-block or virtio-block, not both)")
        }
        try rateLimiter?.validate()
    }
}
