/// Every method and path the API serves: the router matches requests
/// against these, and a test compares them with `docs/openapi.yaml`.
public struct Route: Hashable, Sendable, CustomStringConvertible {
    public var method: String
    /// The path as the OpenAPI document writes it: `{drive_id}` for an id.
    public var path: String

    public init(_ method: String, _ path: String) {
        self.method = method
        self.path = path
    }

    public var description: String { "\(method) \(path)" }

    public static let all: [Route] = [
        Route("GET", "/"), Route("GET", "/version"), Route("GET", "/vm/config"),
        Route("GET", "/machine-config"), Route("PUT", "/machine-config"), Route("PATCH", "/machine-config"),
        Route("PUT", "/boot-source"), Route("PUT", "/actions"), Route("PATCH", "/vm"),
        Route("PUT", "/drives/{drive_id}"), Route("PATCH", "/drives/{drive_id}"),
        Route("PUT", "/network-interfaces/{iface_id}"), Route("PATCH", "/network-interfaces/{iface_id}"),
        Route("PUT", "/vsock"), Route("PUT", "/entropy"),
        Route("GET", "/balloon"), Route("PUT", "/balloon"), Route("PATCH", "/balloon"),
        Route("GET", "/balloon/statistics"), Route("PATCH", "/balloon/statistics"),
        Route("PUT", "/snapshot/create"), Route("PUT", "/snapshot/load"),
        Route("PUT", "/logger"), Route("PUT", "/metrics"), Route("PUT", "/x-swiftvmm"),
        Route("PUT", "/migrate"), Route("GET", "/migrate"),
    ]

    /// The route `method` and `path` match, and the id in the path, if any.
    public static func match(method: String, path: String) -> (route: Route, id: String?)? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        for route in all where route.method == method {
            let pattern = route.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            guard pattern.count == parts.count else { continue }
            var id: String?
            var matched = true
            for (want, have) in zip(pattern, parts) {
                if want.hasPrefix("{") { id = String(have) } else if want != have { matched = false; break }
            }
            if matched { return (route, id) }
        }
        return nil
    }
}
