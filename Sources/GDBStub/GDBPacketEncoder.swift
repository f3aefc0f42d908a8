/// Frames a reply for the wire: `$`, the payload with `$`, `#`, `}` and `*`
/// escaped, `#` and the two-digit checksum of what was sent.
public enum GDBPacketEncoder {
    public static func frame(_ payload: some Sequence<UInt8>) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "$")]
        var sum: UInt8 = 0
        for byte in payload {
            if needsEscape(byte) {
                out.append(UInt8(ascii: "}"))
                out.append(byte ^ 0x20)
                sum &+= UInt8(ascii: "}") &+ (byte ^ 0x20)
            } else {
                out.append(byte)
                sum &+= byte
            }
        }
        out.append(UInt8(ascii: "#"))
        out.append(contentsOf: GDBHex.encode([sum]))
        return out
    }

    static func needsEscape(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "$") || byte == UInt8(ascii: "#") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "*")
    }
}
