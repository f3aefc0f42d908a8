/// Parsers for the values users type on the command line or in configuration:
/// sizes (`64M`, `1G`, `4096`) and addresses (`0x7c00`, `31744`).
///
/// They live in the library, not the CLI, so that every front end (and the
/// fuzzers) parse the same way; they never trap, whatever the input.
public enum CommandLineValue {
    public enum ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        case empty
        case notANumber(String)
        case overflow(String)
        case unknownSuffix(String)
        case notPageMultiple(String, UInt64)
        case unknownUnit(String)
        case notADuration(String)

        public var description: String {
            switch self {
            case .empty: return "the value is empty"
            case .notANumber(let text): return "'\(text)' is not a number (use decimal or 0x-prefixed hex)"
            case .overflow(let text): return "'\(text)' does not fit in 64 bits"
            case .unknownSuffix(let text): return "'\(text)' has an unknown size suffix (use K, M, G or none for bytes)"
            case .notPageMultiple(let text, let value): return "'\(text)' (\(value) bytes) is not a whole number of 4096-byte pages"
            case .unknownUnit(let text): return "'\(text)' has an unknown unit (use ms, s, m or h; a bare number is seconds)"
            case .notADuration(let text): return "'\(text)' is not a duration (e.g. 500ms, 30s, 2m; a bare number is seconds)"
            }
        }
    }

    /// A 64-bit unsigned number in decimal or `0x` hex (underscores allowed as separators).
    public static func parseAddress(_ text: String) throws(ParseError) -> UInt64 {
        let trimmed = text.replacingUnderscores()
        guard !trimmed.isEmpty else { throw .empty }
        let lower = trimmed.lowercased()
        let (digits, radix) = lower.hasPrefix("0x") ? (String(lower.dropFirst(2)), 16) : (lower, 10)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCIIHexDigit && (radix == 16 || $0.isASCIIDigit) }) else {
            throw .notANumber(text)
        }
        guard let value = UInt64(digits, radix: radix) else { throw .overflow(text) }
        return value
    }

    /// A size in bytes: a number with an optional `K`, `M` or `G` suffix (binary
    /// units; `KiB`, `MiB`, `GiB` and `B` also accepted). The result must be a
    /// whole number of 4 KiB pages when `pageMultiple` is set.
    public static func parseSize(_ text: String, pageMultiple: Bool = true) throws(ParseError) -> UInt64 {
        var body = text.replacingUnderscores()
        guard !body.isEmpty else { throw .empty }
        var shift: UInt64 = 0
        let suffixes: [(String, UInt64)] = [("kib", 10), ("mib", 20), ("gib", 30), ("k", 10), ("m", 20), ("g", 30), ("b", 0)]
        for (suffix, bits) in suffixes where body.lowercased().hasSuffix(suffix) && body.count > suffix.count {
            body = String(body.dropLast(suffix.count))
            shift = bits
            break
        }
        guard body.contains(where: \.isASCIIDigit) else { throw .notANumber(text) }
        guard let last = body.last, last.isASCIIDigit || body.lowercased().hasPrefix("0x") else { throw .unknownSuffix(text) }
        let number: UInt64
        do { number = try parseAddress(body) } catch .notANumber { throw .notANumber(text) } catch { throw .overflow(text) }
        let (value, overflow) = number.multipliedReportingOverflow(by: 1 << shift)
        guard !overflow else { throw .overflow(text) }
        if pageMultiple && value % 4096 != 0 { throw .notPageMultiple(text, value) }
        return value
    }
}

extension CommandLineValue {
    /// A duration: a whole number with an optional unit `ms`, `s`, `m` or `h`
    /// (seconds when there is none), e.g. `500ms`, `30s`, `2m`.
    public static func parseDuration(_ text: String) throws(ParseError) -> Duration {
        let body = text.replacingUnderscores().lowercased()
        guard !body.isEmpty else { throw .empty }
        let digits = body.prefix { $0.isASCIIDigit }
        let unit = body.dropFirst(digits.count)
        guard !digits.isEmpty else { throw .notADuration(text) }
        guard let value = Int64(digits) else { throw .overflow(text) }
        let scale: Int64
        switch unit {
        case "ms": return .milliseconds(value)
        case "", "s": scale = 1
        case "m": scale = 60
        case "h": scale = 3600
        default: throw .unknownUnit(text)
        }
        let (seconds, overflow) = value.multipliedReportingOverflow(by: scale)
        guard !overflow else { throw .overflow(text) }
        return .seconds(seconds)
    }
}

extension String {
    fileprivate func replacingUnderscores() -> String { String(filter { $0 != "_" }) }
}

// Character's isNumber and isHexDigit also accept other scripts' digits
// ("６", "١") and fractions ("½"), which UInt64(_:radix:) then refuses: the
// user was told such a value "does not fit in 64 bits". Only ASCII digits are digits here.
extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
    fileprivate var isASCIIHexDigit: Bool { isASCII && isHexDigit }
}
