/// What a handler answers: a status and, unless it is 204, a JSON body.
public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var body: [UInt8]

    public init(status: Int, body: [UInt8] = []) {
        self.status = status
        self.body = body
    }

    public init(status: Int, json: String) { self.init(status: status, body: Array(json.utf8)) }

    /// 204 No Content: Firecracker's answer to every successful change.
    public static let noContent = HTTPResponse(status: 204)
}
