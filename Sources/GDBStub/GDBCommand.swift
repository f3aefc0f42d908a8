/// A packet from the debugger, parsed. Anything the stub does not implement
/// is `.unsupported` (answered with an empty packet, as the protocol asks);
/// a packet it implements but cannot read is `.malformed` (answered `E01`).
public enum GDBCommand: Equatable, Sendable {
    case querySupported(features: [String])
    case haltReason
    case readRegisters
    case writeRegisters([UInt8])
    case readRegister(Int)
    case writeRegister(Int, [UInt8])
    case readMemory(address: UInt64, length: Int)
    /// `M` (hex) and `X` (binary) writes.
    case writeMemory(address: UInt64, data: [UInt8])
    /// `c`, `s`, `C`, `S` and `vCont`: actions per thread; `nil` thread is the default action.
    case resume([GDBResumeAction.PerThread])
    case vContQuery
    case insertBreakpoint(GDBBreakpointKind, address: UInt64, length: Int)
    case removeBreakpoint(GDBBreakpointKind, address: UInt64, length: Int)
    case threadInfoFirst
    case threadInfoNext
    case currentThread
    /// `Hg`/`Hc`: the thread later `g`/`m` (general) or `c`/`s` (continue) packets mean.
    case setThread(general: Bool, GDBThreadID)
    case threadAlive(GDBThreadID)
    case attached
    case detach
    case kill
    case startNoAckMode
    case readFeatures(annex: String, offset: Int, length: Int)
    case unsupported
    case malformed

    /// The largest memory access one packet may ask for; longer ones are refused, not allocated.
    public static let maximumMemoryLength = 0x10000

    /// Parses one packet's payload (escapes already undone).
    public init(payload: [UInt8]) {
        self = Self.parse(payload[...]) ?? .malformed
    }

    private static func parse(_ p: ArraySlice<UInt8>) -> GDBCommand? {
        guard let first = p.first else { return .unsupported }
        let rest = p.dropFirst()
        switch first {
        case UInt8(ascii: "?"): return .haltReason
        case UInt8(ascii: "g"): return rest.isEmpty ? .readRegisters : nil
        case UInt8(ascii: "G"): return GDBHex.decode(rest).map { .writeRegisters($0) }
        case UInt8(ascii: "p"):
            guard rest.count <= 4, let n = GDBHex.parseNumber(rest) else { return nil }
            return .readRegister(Int(n))
        case UInt8(ascii: "P"):
            let (number, value) = split(rest, at: "=")
            guard let value, number.count <= 4, let n = GDBHex.parseNumber(number), let bytes = GDBHex.decode(value) else { return nil }
            return .writeRegister(Int(n), bytes)
        case UInt8(ascii: "m"):
            guard let (address, length) = addressAndLength(rest) else { return nil }
            return .readMemory(address: address, length: length)
        case UInt8(ascii: "M"):
            let (head, data) = split(rest, at: ":")
            guard let data, let (address, length) = addressAndLength(head), let bytes = GDBHex.decode(data), bytes.count == length
            else { return nil }
            return .writeMemory(address: address, data: bytes)
        case UInt8(ascii: "X"):
            let (head, data) = split(rest, at: ":")
            guard let data, let (address, length) = addressAndLength(head), data.count == length else { return nil }
            return .writeMemory(address: address, data: Array(data))
        case UInt8(ascii: "c"), UInt8(ascii: "s"):
            // An address to resume at is not supported by GDB any more; refuse it rather than ignore it.
            guard rest.isEmpty else { return nil }
            return .resume([.init(first == UInt8(ascii: "c") ? .continue : .step, thread: nil)])
        case UInt8(ascii: "C"), UInt8(ascii: "S"):
            let (signal, address) = split(rest, at: ";")
            guard address == nil, signal.count == 2, GDBHex.parseNumber(signal) != nil else { return nil }
            return .resume([.init(first == UInt8(ascii: "C") ? .continue : .step, thread: nil)])
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            let fields = rest.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
            guard fields.count >= 3, fields[0].count == 1, let type = GDBHex.parseNumber(fields[0]),
                let kind = GDBBreakpointKind(rawValue: Int(type)), let address = GDBHex.parseNumber(fields[1]),
                let lengthField = fields[2].split(separator: UInt8(ascii: ";")).first, lengthField.count <= 8,
                let length = GDBHex.parseNumber(lengthField)
            else { return first == UInt8(ascii: "Z") && rest.first.map { $0 > UInt8(ascii: "4") } == true ? .unsupported : nil }
            return first == UInt8(ascii: "Z")
                ? .insertBreakpoint(kind, address: address, length: Int(length))
                : .removeBreakpoint(kind, address: address, length: Int(length))
        case UInt8(ascii: "H"):
            guard let op = rest.first, op == UInt8(ascii: "g") || op == UInt8(ascii: "c"),
                let thread = GDBThreadID(rest.dropFirst())
            else { return nil }
            return .setThread(general: op == UInt8(ascii: "g"), thread)
        case UInt8(ascii: "T"):
            return GDBThreadID(rest).map { .threadAlive($0) }
        case UInt8(ascii: "D"): return .detach
        case UInt8(ascii: "k"): return .kill
        case UInt8(ascii: "q"), UInt8(ascii: "Q"): return query(p)
        case UInt8(ascii: "v"): return verbose(p)
        default: return .unsupported
        }
    }

    private static func query(_ p: ArraySlice<UInt8>) -> GDBCommand? {
        let text = String(decoding: p, as: UTF8.self)
        if text.hasPrefix("qSupported") {
            let features = text.dropFirst("qSupported".count).drop { $0 == ":" }
            return .querySupported(features: features.split(separator: ";").map(String.init))
        }
        switch text {
        case "qfThreadInfo": return .threadInfoFirst
        case "qsThreadInfo": return .threadInfoNext
        case "qC": return .currentThread
        case "QStartNoAckMode": return .startNoAckMode
        default: break
        }
        if text == "qAttached" || text.hasPrefix("qAttached:") { return .attached }
        let prefix = "qXfer:features:read:"
        if text.hasPrefix(prefix) {
            let parts = text.dropFirst(prefix.count).split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 else { return nil }
            let range = parts[1].split(separator: ",", omittingEmptySubsequences: false)
            guard range.count == 2, let offset = GDBHex.parseNumber(range[0].utf8), let length = GDBHex.parseNumber(range[1].utf8),
                offset <= UInt64(Int32.max), length <= UInt64(Int32.max)
            else { return nil }
            return .readFeatures(annex: String(parts[0]), offset: Int(offset), length: Int(length))
        }
        return .unsupported
    }

    private static func verbose(_ p: ArraySlice<UInt8>) -> GDBCommand? {
        let text = String(decoding: p, as: UTF8.self)
        if text == "vCont?" { return .vContQuery }
        guard text.hasPrefix("vCont;") else { return .unsupported }
        var actions: [GDBResumeAction.PerThread] = []
        for item in text.dropFirst("vCont;".count).split(separator: ";", omittingEmptySubsequences: false) {
            let (verb, thread) = split(Array(item.utf8)[...], at: ":")
            guard let letter = verb.first else { return nil }
            let action: GDBResumeAction
            switch letter {
            case UInt8(ascii: "c"), UInt8(ascii: "s"):
                guard verb.count == 1 else { return nil }
                action = letter == UInt8(ascii: "c") ? .continue : .step
            case UInt8(ascii: "C"), UInt8(ascii: "S"):
                guard verb.count == 3, GDBHex.parseNumber(verb.dropFirst()) != nil else { return nil }
                action = letter == UInt8(ascii: "C") ? .continue : .step
            default:
                return nil
            }
            var target: GDBThreadID?
            if let thread {
                guard let id = GDBThreadID(thread) else { return nil }
                target = id
            }
            actions.append(.init(action, thread: target))
        }
        return actions.isEmpty ? nil : .resume(actions)
    }

    private static func split(_ text: ArraySlice<UInt8>, at separator: Unicode.Scalar) -> (ArraySlice<UInt8>, ArraySlice<UInt8>?) {
        guard let index = text.firstIndex(of: UInt8(ascii: separator)) else { return (text, nil) }
        return (text[..<index], text[(index + 1)...])
    }

    /// `addr,length`, with a length no larger than `maximumMemoryLength`.
    private static func addressAndLength(_ text: ArraySlice<UInt8>) -> (UInt64, Int)? {
        let (a, l) = split(text, at: ",")
        guard let l, let address = GDBHex.parseNumber(a), let length = GDBHex.parseNumber(l), length <= UInt64(maximumMemoryLength)
        else { return nil }
        return (address, Int(length))
    }
}
