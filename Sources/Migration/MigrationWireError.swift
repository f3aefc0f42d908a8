/// Why a migration stream was refused: each case names what was wrong and,
/// where it helps, what was expected. A hostile or damaged stream ends in one
/// of these, never in a crash or an allocation of the size it asks for.
public enum MigrationWireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The stream did not start with "SWVMMIGR".
    case badMagic
    /// The peer speaks another protocol version.
    case unsupportedVersion(found: UInt32, supported: UInt32)
    /// Fewer bytes than a header or payload needs.
    case truncated(expected: Int, found: Int)
    /// A message type this version does not know.
    case unknownMessageType(UInt32)
    /// A payload longer than its type allows.
    case payloadTooLarge(type: UInt32, length: UInt32, limit: Int)
    /// The frame's checksum does not match its bytes.
    case checksumMismatch(type: UInt32, expected: UInt32, found: UInt32)
    /// A payload that does not decode; `reason` names the field.
    case malformed(message: String, reason: String)
    /// The peer closed the stream (at a message boundary, or within one).
    case endOfStream
    /// A read or write on the connection failed.
    case io(operation: String, errno: Int32)
    /// Nothing arrived in time.
    case timedOut(operation: String)

    public var description: String {
        switch self {
        case .badMagic: return "not a swiftvmm migration stream (bad magic)"
        case .unsupportedVersion(let found, let supported):
            return "migration protocol version \(found) is not supported (this swiftvmm speaks version \(supported))"
        case .truncated(let expected, let found): return "truncated: expected \(expected) bytes, found \(found)"
        case .unknownMessageType(let type): return "unknown message type \(type)"
        case .payloadTooLarge(let type, let length, let limit): return "message type \(type): payload of \(length) bytes, at most \(limit)"
        case .checksumMismatch(let type, let expected, let found):
            return "message type \(type): checksum mismatch (expected \(hex(expected)), computed \(hex(found)))"
        case .malformed(let message, let reason): return "malformed \(message) message: \(reason)"
        case .endOfStream: return "the peer closed the connection"
        case .io(let operation, let errno): return "\(operation) failed (errno \(errno))"
        case .timedOut(let operation): return "\(operation) timed out"
        }
    }

    private func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }
}
