/// What one client may cost the server.
public struct ServerLimits: Sendable {
    /// Larger bodies are answered 413 and the connection closed (Firecracker's limit).
    public var maximumBodyBytes = 51_200
    /// A connection that sends nothing for this long is closed: a half request
    /// (slowloris) cannot hold a connection open.
    public var idleTimeout: Duration = .seconds(10)
    /// Connections beyond this many are closed as they arrive.
    public var maximumConnections = 1024

    public init() {}
}
