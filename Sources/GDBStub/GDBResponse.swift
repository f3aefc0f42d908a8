/// What the stub does after a packet.
public enum GDBResponse: Equatable, Sendable {
    /// Send this payload.
    case reply([UInt8])
    /// The target runs; the reply is the stop reply that comes later.
    case resumed
    /// Send this payload, then close the connection (detach).
    case replyAndClose([UInt8])
    /// Close the connection without a reply (kill).
    case close
}
