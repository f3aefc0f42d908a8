/// Why the stub could not listen.
public enum GDBServerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A socket call failed: which, where, and the errno.
    case socket(operation: String, endpoint: String, errno: Int32)
    /// The TCP host is not an IPv4 address or `localhost`.
    case unsupportedHost(String)
    /// No thread for the stub.
    case noThread

    public var description: String {
        switch self {
        case .socket(let operation, let endpoint, let errno):
            return "GDB stub: \(operation) for \(endpoint) failed: \(String(cString: strerrorText(errno)))"
        case .unsupportedHost(let host):
            return "GDB stub: host '\(host)' is not an IPv4 address or 'localhost' (expected tcp:HOST:PORT, e.g. tcp:127.0.0.1:1234)"
        case .noThread: return "GDB stub: no thread could be started for it"
        }
    }
}
