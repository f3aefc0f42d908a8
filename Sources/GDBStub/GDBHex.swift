/// Hex digits as the remote protocol writes numbers and bytes: lower case,
/// two digits per byte, numbers most significant digit first.
public enum GDBHex {
    static let digits = Array("0123456789abcdef".utf8)

    /// `bytes` as two hex digits each.
    public static func encode(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xf)])
        }
        return out
    }

    /// `value` in hex without leading zeros ("0" for zero).
    public static func number(_ value: UInt64) -> [UInt8] { Array(String(value, radix: 16).utf8) }

    /// The value of one hex digit, or `nil`.
    static func digit(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Pairs of hex digits back to bytes; `nil` for an odd count or a non-digit.
    public static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(text.count / 2)
        var high: UInt8?
        for c in text {
            guard let d = digit(c) else { return nil }
            if let h = high {
                out.append(h << 4 | d)
                high = nil
            } else {
                high = d
            }
        }
        return out
    }

    /// A hex number of at most 16 digits; `nil` if empty, too long or not hex.
    public static func parseNumber(_ text: some Collection<UInt8>) -> UInt64? {
        guard !text.isEmpty, text.count <= 16 else { return nil }
        var value: UInt64 = 0
        for c in text {
            guard let d = digit(c) else { return nil }
            value = value << 4 | UInt64(d)
        }
        return value
    }
}
