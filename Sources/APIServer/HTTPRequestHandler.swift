/// What answers requests. The server calls it on one serial queue of its
/// own, never on its event loop: a handler that blocks (a pause, a snapshot)
/// delays other requests, never the server's reading and writing.
public protocol HTTPRequestHandler: Sendable {
    func handle(_ request: HTTPRequest) -> HTTPResponse
    /// Answers `request` through `respond`, now or later from any thread:
    /// a request that takes long (a live migration) answers once it is done
    /// while the queue goes on serving others. By default, `handle(_:)`'s answer at once.
    func handle(_ request: HTTPRequest, respond: @escaping @Sendable (HTTPResponse) -> Void)
}

extension HTTPRequestHandler {
    public func handle(_ request: HTTPRequest, respond: @escaping @Sendable (HTTPResponse) -> Void) { respond(handle(request)) }
}
