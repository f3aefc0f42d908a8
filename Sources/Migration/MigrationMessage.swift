import FoundationEssentials
import VMCore

/// One message of the migration stream. Who sends what, in order:
///
/// ```
/// source                                  destination
/// stream header, hello          ->
///                               <-        stream header, hello (or error)
/// pages..., endOfRound (rounds) ->        (none in a local live upgrade)
/// (guest paused) pages, state,
/// complete                      ->        (local live upgrade: memoryHandover
///                                          + fd instead of the pages)
///                               <-        loaded (the machine is built, not running)
/// commit                        ->
///                               <-        running
/// ```
///
/// Either side may send `error` instead of its next message and close; a
/// source that has not sent `commit` then resumes the guest itself.
public enum MigrationMessage: Equatable, Sendable {
    /// Type 1: who the peer is and what the machine is (JSON).
    case hello(MigrationHello)
    /// Type 2: guest pages (see `PageBatch`).
    case pages(PageBatch)
    /// Type 3: the source finished round `n` (4 bytes): for progress and tests.
    case endOfRound(UInt32)
    /// Type 4: the machine's vCPU, VM and device state: a snapshot state file.
    case state([UInt8])
    /// Type 5: the source sent everything; the guest is paused there.
    case complete
    /// Type 6: the destination holds the whole machine, built but not running.
    case loaded
    /// Type 7: the source gives the machine up: the destination may run it.
    case commit
    /// Type 8: the machine runs on the destination.
    case running
    /// Type 9: the sender gives up, for this reason (UTF-8).
    case error(String)
    /// Type 10: guest RAM of this many bytes comes as the descriptor sent
    /// with this message (`SCM_RIGHTS`), instead of as pages (8 bytes).
    case memoryHandover(size: UInt64)

    /// The type number on the wire.
    public var type: UInt32 {
        switch self {
        case .hello: return 1
        case .pages: return 2
        case .endOfRound: return 3
        case .state: return 4
        case .complete: return 5
        case .loaded: return 6
        case .commit: return 7
        case .running: return 8
        case .error: return 9
        case .memoryHandover: return 10
        }
    }

    /// The message's name, for errors and logs.
    public var name: String { Self.name(ofType: type) }

    static func name(ofType type: UInt32) -> String {
        let names = ["hello", "pages", "endOfRound", "state", "complete", "loaded", "commit", "running", "error", "memoryHandover"]
        return (1...UInt32(names.count)).contains(type) ? names[Int(type) - 1] : "type \(type)"
    }

    /// The longest payload a message of `type` may have, or an error for an unknown type.
    public static func maximumPayload(ofType type: UInt32) throws(MigrationWireError) -> Int {
        switch type {
        case 1: return MigrationWire.maximumHelloBytes
        case 2: return 8 + 16 * MigrationWire.maximumBatchEntries + MigrationWire.pageSize * MigrationWire.maximumBatchDataPages
        case 3: return 4
        case 4: return MigrationWire.maximumStateBytes
        case 5, 6, 7, 8: return 0
        case 9: return MigrationWire.maximumErrorBytes
        case 10: return 8
        default: throw .unknownMessageType(type)
        }
    }

    /// The payload bytes.
    public func payload() -> [UInt8] {
        var bytes: [UInt8] = []
        switch self {
        case .hello(let hello):
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            // A plain struct of strings and numbers always encodes.
            bytes = (try? Array(encoder.encode(hello))) ?? []
        case .pages(let batch): bytes = batch.encoded()
        case .endOfRound(let round): WireBytes.append(round, to: &bytes)
        case .state(let state): bytes = state
        case .complete, .loaded, .commit, .running: break
        case .error(let message): bytes = Array(message.utf8.prefix(MigrationWire.maximumErrorBytes))
        case .memoryHandover(let size): WireBytes.append(size, to: &bytes)
        }
        return bytes
    }

    /// The whole frame: header (type, length, checksum) and payload.
    public func frame() -> [UInt8] { Self.frame(type: type, payload: payload()) }

    /// A frame of `type` around `payload`, checksummed (for tests that make frames of their own).
    public static func frame(type: UInt32, payload: [UInt8]) -> [UInt8] {
        var header: [UInt8] = []
        WireBytes.append(type, to: &header)
        WireBytes.append(UInt32(truncatingIfNeeded: payload.count), to: &header)
        let crc = CRC32.update(CRC32.checksum(header), with: payload)
        WireBytes.append(crc, to: &header)
        return header + payload
    }

    /// Decodes a payload of `type` (whose length and checksum were checked).
    public static func decode(type: UInt32, payload: ArraySlice<UInt8>) throws(MigrationWireError) -> MigrationMessage {
        let limit = try maximumPayload(ofType: type)
        guard payload.count <= limit else { throw .payloadTooLarge(type: type, length: UInt32(clamping: payload.count), limit: limit) }
        func exactly(_ count: Int) throws(MigrationWireError) {
            guard payload.count == count else {
                throw .malformed(message: name(ofType: type), reason: "payload of \(payload.count) bytes, expected \(count)")
            }
        }
        switch type {
        case 1:
            do { return .hello(try JSONDecoder().decode(MigrationHello.self, from: Data(payload))) } catch {
                throw .malformed(message: "hello", reason: "\(error)")
            }
        case 2: return .pages(try PageBatch(decoding: payload))
        case 3:
            try exactly(4)
            return .endOfRound(WireBytes.integer(payload, at: 0))
        case 4: return .state(Array(payload))
        case 5, 6, 7, 8:
            try exactly(0)
            return [5: .complete, 6: .loaded, 7: .commit, 8: .running][type] ?? .complete
        case 9: return .error(String(decoding: payload, as: UTF8.self))
        default:
            try exactly(8)
            return .memoryHandover(size: WireBytes.integer(payload, at: 0))
        }
    }
}
