/// Finds packets (`$payload#cs`), acknowledgements and interrupts in the
/// bytes a debugger sends, however they are split across reads.
///
/// Bytes outside a packet other than `+`, `-` and `\x03` are ignored, as the
/// protocol allows (a debugger may send stray characters on connect). A
/// packet that grows past `maximumPayload` is dropped and reported once, so a
/// peer sending an endless packet costs bounded memory.
public struct GDBPacketDecoder: Sendable {
    /// The largest payload (as sent, before unescaping) accepted.
    public let maximumPayload: Int

    private enum State: Sendable {
        case idle
        case payload
        /// Skipping the rest of a packet that grew too long.
        case discarding
        case checksum(high: UInt8?)
    }

    private var state = State.idle
    private var raw: [UInt8] = []
    private var sum: UInt8 = 0
    private var discardedChecksumDigits = 0

    public init(maximumPayload: Int = 0x4000) {
        self.maximumPayload = maximumPayload
    }

    /// Whether the decoder is inside a packet (a debugger that disconnects now left it half sent).
    public var isInsidePacket: Bool {
        if case .idle = state { return false }
        return true
    }

    /// Feeds `bytes` and returns what they completed, in order.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [GDBInput] {
        var inputs: [GDBInput] = []
        for byte in bytes {
            if let input = feed(byte) { inputs.append(input) }
        }
        return inputs
    }

    private mutating func feed(_ byte: UInt8) -> GDBInput? {
        switch state {
        case .idle:
            switch byte {
            case UInt8(ascii: "$"):
                state = .payload
                raw.removeAll(keepingCapacity: true)
                sum = 0
            case UInt8(ascii: "+"): return .acknowledged
            case UInt8(ascii: "-"): return .retransmitRequested
            case 0x03: return .interrupt
            default: break
            }
            return nil
        case .payload:
            if byte == UInt8(ascii: "#") {
                state = .checksum(high: nil)
                return nil
            }
            if byte == UInt8(ascii: "$") {
                // A new packet before the old one ended: the old one is lost (GDB resends it).
                raw.removeAll(keepingCapacity: true)
                sum = 0
                return nil
            }
            guard raw.count < maximumPayload else {
                state = .discarding
                raw.removeAll()
                return nil
            }
            raw.append(byte)
            sum &+= byte
            return nil
        case .discarding:
            if byte == UInt8(ascii: "#") {
                discardedChecksumDigits = 2
            } else if discardedChecksumDigits > 0 {
                discardedChecksumDigits -= 1
                if discardedChecksumDigits == 0 {
                    state = .idle
                    return .oversized
                }
            }
            return nil
        case .checksum(let high):
            guard let digit = GDBHex.digit(byte) else {
                state = .idle
                return .badChecksum
            }
            guard let high else {
                state = .checksum(high: digit)
                return nil
            }
            state = .idle
            guard high << 4 | digit == sum else { return .badChecksum }
            return .packet(Self.unescape(raw))
        }
    }

    /// Undoes the escapes (`}` then the byte XOR 0x20) and run-length
    /// encoding (`*` then a count + 29: the previous byte that many more times).
    public static func unescape(_ raw: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        while i < raw.count {
            let byte = raw[i]
            if byte == UInt8(ascii: "}"), i + 1 < raw.count {
                out.append(raw[i + 1] ^ 0x20)
                i += 2
            } else if byte == UInt8(ascii: "*"), i + 1 < raw.count, let last = out.last {
                let count = Int(raw[i + 1]) - 29
                if count > 0 { out.append(contentsOf: repeatElement(last, count: count)) }
                i += 2
            } else {
                out.append(byte)
                i += 1
            }
        }
        return out
    }
}
