/// One of the XSAVE family, or `ldmxcsr`/`stmxcsr` (which move a piece of
/// the same state), decoded from its bytes: which form, whether REX.W asked
/// for the 64-bit x87 pointer format, its memory operand and its length.
struct ExtendedStateInstruction: Hashable, Sendable {
    enum Form: Hashable, Sendable {
        /// `xsave` (0f ae /4): standard format, every requested component.
        case save
        /// `xsaveopt` (0f ae /6): as `xsave`, components in their initial state left unwritten.
        case saveOptimized
        /// `xsavec` (0f c7 /4): compacted format, components in use only.
        case saveCompacted
        /// `xrstor` (0f ae /5): standard or compacted, as the header says.
        case restore
        /// `xsaves` (0f c7 /5) or `xrstors` (0f c7 /3): supervisor state too.
        case supervisor
        /// `ldmxcsr m32` (0f ae /2): MXCSR from memory (Linux's `kernel_fpu_begin`).
        case loadMXCSR
        /// `stmxcsr m32` (0f ae /3): MXCSR to memory.
        case storeMXCSR
    }

    var form: Form
    /// REX.W: `xsave64` and friends, whose x87 image holds 64-bit FIP and FDP.
    var wide: Bool
    /// A REX prefix was present (only possible in 64-bit mode).
    var hasREX: Bool
    var operand: MemoryOperand
    var length: UInt64

    /// Decodes `bytes` if they start with one of the family: segment and
    /// address-size prefixes, an optional REX, then 0f ae or 0f c7 with a
    /// memory operand. `lock`, `66`, `f2`, `f3` make other instructions (or #UD): not decoded.
    static func decode(_ bytes: [UInt8]) -> ExtendedStateInstruction? {
        let prefixes = OperandPrefixes(scanning: bytes)
        var position = prefixes.length
        var rex: UInt8 = 0
        if position < bytes.count, bytes[position] & 0xf0 == 0x40 {
            rex = bytes[position]
            position += 1
        }
        guard bytes.count >= position + 3, bytes[position] == 0x0f else { return nil }
        let opcode = bytes[position + 1]
        let reg = (bytes[position + 2] >> 3) & 7
        let form: Form
        switch (opcode, reg) {
        case (0xae, 2): form = .loadMXCSR
        case (0xae, 3): form = .storeMXCSR
        case (0xae, 4): form = .save
        case (0xae, 5): form = .restore
        case (0xae, 6): form = .saveOptimized
        case (0xc7, 4): form = .saveCompacted
        case (0xc7, 5), (0xc7, 3): form = .supervisor
        default: return nil
        }
        guard let decoded = MemoryOperand.decode(bytes, at: position + 2, rex: rex) else { return nil }
        var operand = decoded.0
        prefixes.apply(to: &operand)
        return ExtendedStateInstruction(
            form: form, wide: rex & 0x8 != 0, hasREX: rex != 0, operand: operand,
            length: UInt64(position + 2 + decoded.length))
    }
}
