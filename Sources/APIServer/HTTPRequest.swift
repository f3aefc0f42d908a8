/// One complete request as a handler sees it.
public struct HTTPRequest: Sendable {
    /// `GET`, `PUT`, `PATCH`, ...
    public var method: String
    /// The path, without a query string.
    public var path: String
    /// The whole body (at most `ServerLimits.maximumBodyBytes`).
    public var body: [UInt8]

    public init(method: String, path: String, body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.body = body
    }
}
