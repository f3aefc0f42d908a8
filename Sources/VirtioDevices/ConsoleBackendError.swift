import HostSupport

/// Why a virtio console's host end could not be set up; names the path.
public enum ConsoleBackendError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The output file could not be opened for writing (errno).
    case cannotOpen(path: String, errno: Int32)
    /// The socket could not be made.
    case socket(UnixSocket.Failure)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let errno): return "console output \(path): cannot open for writing (errno \(errno))"
        case .socket(let failure): return "console \(failure)"
        }
    }
}
