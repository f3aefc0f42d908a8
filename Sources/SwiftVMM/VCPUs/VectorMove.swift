/// The few AVX instructions kvm-unit-tests' `xsave` entry runs in ring 0
/// (which this host cannot emulate there), decoded from their VEX encoding:
/// whole-register moves and clears, nothing that computes.
struct VectorMove: Hashable, Sendable {
    enum Kind: Hashable, Sendable {
        /// `vzeroall` (VEX.256.0F 77): every vector register 0-15 to zero.
        case zeroAll
        /// `vzeroupper` (VEX.128.0F 77): bits 255 and up of registers 0-15 to zero.
        case zeroUpper
        /// `vmovdqa`/`vmovdqu`/`vmovntdqa` into `register` from a register or memory.
        case load(register: Int)
        /// `vmovdqa`/`vmovdqu`/`vmovntdq` from `register` to a register or memory.
        case store(register: Int)
    }

    var kind: Kind
    /// 32 bytes (VEX.L = 1) or 16.
    var width: Int
    /// The other operand: a register (0-15) or memory.
    var source: Int?
    var operand: MemoryOperand?
    /// The memory operand must be aligned to `width` (vmovdqa, vmovntdq, vmovntdqa).
    var aligned: Bool
    var length: UInt64

    /// Decodes `bytes` if they start with one of these (a 2- or 3-byte VEX
    /// prefix, no other prefix but a segment override or 67).
    static func decode(_ bytes: [UInt8]) -> VectorMove? {
        let prefixes = OperandPrefixes(scanning: bytes)
        var position = prefixes.length
        guard bytes.count >= position + 3 else { return nil }
        var rex: UInt8 = 0  // R, X, B as in REX (VEX stores them inverted)
        let map: UInt8
        let vexByte: UInt8
        if bytes[position] == 0xc5 {
            vexByte = bytes[position + 1]
            rex = vexByte & 0x80 == 0 ? 4 : 0
            map = 1
            position += 2
        } else if bytes[position] == 0xc4, bytes.count >= position + 4 {
            let first = bytes[position + 1]
            rex = (first & 0x80 == 0 ? 4 : 0) | (first & 0x40 == 0 ? 2 : 0) | (first & 0x20 == 0 ? 1 : 0)
            map = first & 0x1f
            vexByte = bytes[position + 2]
            position += 3
        } else {
            return nil
        }
        let vvvv = (vexByte >> 3) & 0xf
        let wide = vexByte & 0x4 != 0
        let prefix = vexByte & 3  // 0 none, 1 66, 2 f3, 3 f2
        guard vvvv == 0xf, bytes.count > position else { return nil }
        let opcode = bytes[position]
        position += 1
        if map == 1, opcode == 0x77, prefix == 0 {
            return VectorMove(
                kind: wide ? .zeroAll : .zeroUpper, width: 32, source: nil, operand: nil, aligned: false, length: UInt64(position))
        }
        guard bytes.count > position else { return nil }
        let modrm = bytes[position]
        let register = Int((modrm >> 3) & 7) | (rex & 4 != 0 ? 8 : 0)
        let kind: Kind
        let aligned: Bool
        switch (map, opcode, prefix) {
        case (1, 0x6f, 1), (1, 0x6f, 2): (kind, aligned) = (.load(register: register), prefix == 1)
        case (1, 0x7f, 1), (1, 0x7f, 2): (kind, aligned) = (.store(register: register), prefix == 1)
        case (1, 0xe7, 1) where modrm >> 6 != 3: (kind, aligned) = (.store(register: register), true)
        case (2, 0x2a, 1) where modrm >> 6 != 3: (kind, aligned) = (.load(register: register), true)
        default: return nil
        }
        let width = wide ? 32 : 16
        if modrm >> 6 == 3 {
            let other = Int(modrm & 7) | (rex & 1 != 0 ? 8 : 0)
            return VectorMove(kind: kind, width: width, source: other, operand: nil, aligned: false, length: UInt64(position + 1))
        }
        guard let decoded = MemoryOperand.decode(bytes, at: position, rex: rex) else { return nil }
        var operand = decoded.0
        prefixes.apply(to: &operand)
        return VectorMove(
            kind: kind, width: width, source: nil, operand: operand, aligned: aligned, length: UInt64(position + decoded.length))
    }

    /// Register `n`'s low `width` bytes in KVM's XSAVE buffer `state`.
    static func read(_ n: Int, width: Int, from state: [UInt8], upperOffset: Int) -> [UInt8] {
        let low = Array(state[160 + 16 * n..<160 + 16 * n + 16])
        return width == 16 ? low : low + state[upperOffset + 16 * n..<upperOffset + 16 * n + 16]
    }

    /// Writes `bytes` (16 or 32) to register `n` in `state`, zeroing every bit
    /// above them (VEX-encoded instructions clear up to the maximum vector
    /// length): the AVX upper half and, where the layout has it, AVX-512's.
    static func write(
        _ n: Int, _ bytes: [UInt8], into state: inout [UInt8], upperOffset: Int, zmmUpperOffset: Int?
    ) {
        state.replaceSubrange(160 + 16 * n..<160 + 16 * n + 16, with: bytes[0..<16])
        let upper = bytes.count == 32 ? Array(bytes[16..<32]) : [UInt8](repeating: 0, count: 16)
        state.replaceSubrange(upperOffset + 16 * n..<upperOffset + 16 * n + 16, with: upper)
        if let zmmUpperOffset {
            state.replaceSubrange(zmmUpperOffset + 32 * n..<zmmUpperOffset + 32 * n + 32, with: repeatElement(0, count: 32))
        }
        // In use now (XSTATE_BV bits 1 and 2): KVM loads a component only where its bit is set.
        state[XSAVEImage.headerOffset] |= 6
    }
}
