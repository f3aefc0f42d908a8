/// The register form shared by the assisted `0f xx /r` instructions whose
/// operands are both general registers (`popcnt`, `lsl`): legacy prefixes
/// (F3, 66 for 16 bits, segment overrides, which do nothing here), an
/// optional REX, `0f opcode`, and a ModRM byte with mod = 3.
struct RegisterForm: Hashable, Sendable {
    /// ModRM.reg, extended by REX.R.
    var destination: Int
    /// ModRM.rm, extended by REX.B.
    var source: Int
    /// 8 with REX.W, 2 with 66, else 4 (a 32-bit write zero-extends).
    var operandSize: Int
    /// Whether an F3 prefix came first (`popcnt` requires it).
    var repeatPrefix: Bool
    /// The instruction's length in bytes.
    var length: Int

    /// `nil` where `bytes` are not `0f opcode` in register form.
    init?(_ bytes: [UInt8], opcode: UInt8) {
        var index = 0
        var repeatPrefix = false
        var operandSizePrefix = false
        while index < bytes.count, [0xf3, 0x66, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65].contains(bytes[index]) {
            if bytes[index] == 0xf3 { repeatPrefix = true }
            if bytes[index] == 0x66 { operandSizePrefix = true }
            index += 1
        }
        var rex: UInt8 = 0
        if index < bytes.count, bytes[index] & 0xf0 == 0x40 {
            rex = bytes[index]
            index += 1
        }
        guard bytes.count >= index + 3, bytes[index] == 0x0f, bytes[index + 1] == opcode else { return nil }
        let modrm = bytes[index + 2]
        guard modrm >> 6 == 3 else { return nil }
        destination = Int((modrm >> 3) & 7) | (rex & 0x4 != 0 ? 8 : 0)
        source = Int(modrm & 7) | (rex & 0x1 != 0 ? 8 : 0)
        operandSize = rex & 0x8 != 0 ? 8 : (operandSizePrefix ? 2 : 4)
        self.repeatPrefix = repeatPrefix
        length = index + 3
    }
}
