/// The legacy prefixes an assisted instruction with a memory operand may
/// carry before its REX or VEX prefix: a segment override and the
/// address-size override (`67`). Any other prefix ends the scan, so the
/// decoder after it sees the byte and refuses what it does not know.
struct OperandPrefixes {
    /// 0-5 for es, cs, ss, ds, fs, gs; nil without an override.
    var segmentOverride: Int?
    var addressSizeOverride = false
    /// How many bytes the prefixes take.
    var length = 0

    private static let segments: [UInt8: Int] = [0x26: 0, 0x2e: 1, 0x36: 2, 0x3e: 3, 0x64: 4, 0x65: 5]

    init(scanning bytes: [UInt8]) {
        while length < bytes.count {
            if let segment = Self.segments[bytes[length]] {
                segmentOverride = segment
            } else if bytes[length] == 0x67 {
                addressSizeOverride = true
            } else {
                break
            }
            length += 1
        }
    }

    /// Puts the prefixes into `operand`, which the ModRM decoder made without them.
    func apply(to operand: inout MemoryOperand) {
        operand.segmentOverride = segmentOverride
        operand.addressSizeOverride = addressSizeOverride
    }
}
