/// What answers requests. The server calls it on one serial queue of its
/// own, never on its event loop: a handler that blocks (a pause, a snapshot)
/// delays other requests, never the server's reading and writing.
public protocol HTTPRequestHandler: Sendable {
    func handle(_ request: HTTPRequest) -> HTTPResponse
}
