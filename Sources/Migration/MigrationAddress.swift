/// Where a migration goes or comes from: `unix:PATH` or `tcp:HOST:PORT`.
public enum MigrationAddress: Hashable, Sendable, CustomStringConvertible {
    case unix(path: String)
    case tcp(host: String, port: UInt16)

    /// Parses `unix:PATH` or `tcp:HOST:PORT` (HOST an IPv4 address or `localhost`).
    public init(parsing text: String) throws(MigrationAddressError) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { throw MigrationAddressError(text: text, reason: "unix: needs a socket path") }
            self = .unix(path: path)
        } else if text.hasPrefix("tcp:") {
            let rest = text.dropFirst(4)
            guard let colon = rest.lastIndex(of: ":"), let port = UInt16(rest[rest.index(after: colon)...]), port > 0 else {
                throw MigrationAddressError(text: text, reason: "tcp: needs HOST:PORT with a port from 1 to 65535")
            }
            let host = String(rest[..<colon])
            guard !host.isEmpty else { throw MigrationAddressError(text: text, reason: "tcp: needs a host") }
            self = .tcp(host: host, port: port)
        } else {
            throw MigrationAddressError(text: text, reason: "expected unix:PATH or tcp:HOST:PORT")
        }
    }

    public var description: String {
        switch self {
        case .unix(let path): return "unix:\(path)"
        case .tcp(let host, let port): return "tcp:\(host):\(port)"
        }
    }

    /// Whether both ends are on this machine for sure (a Unix socket), so that RAM can be handed over as a memfd.
    public var isLocal: Bool { if case .unix = self { return true } else { return false } }
}

/// A migration address that does not parse.
public struct MigrationAddressError: Error, Hashable, Sendable, CustomStringConvertible {
    public var text: String
    public var reason: String
    public var description: String { "'\(text)': \(reason)" }
}
