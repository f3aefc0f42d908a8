import VMCore

/// The memory operand of an instruction, as its ModRM byte, SIB byte and
/// displacement encode it (32- and 64-bit addressing; 16-bit addressing is
/// not decoded), and the linear address it names for given registers.
struct MemoryOperand: Hashable, Sendable {
    /// The base register (0-15, REX.B included), or `nil` (no base, or RIP-relative).
    var base: Int?
    /// The index register (0-15, REX.X included; RSP means none), or `nil`.
    var index: Int?
    /// 1, 2, 4 or 8.
    var scale: UInt64 = 1
    /// The sign-extended displacement.
    var displacement: Int64 = 0
    /// ModRM mod 0, rm 5: RIP-relative in 64-bit mode, an absolute disp32 otherwise.
    var ripRelative = false
    /// A segment-override prefix (0 = ES ... 5 = GS, the order of Sreg), or `nil`.
    var segmentOverride: Int?
    /// An address-size prefix (67) was present.
    var addressSizeOverride = false

    /// Decodes the ModRM byte at `bytes[at]` and what follows it. Returns the
    /// operand and the number of bytes from ModRM to the end of the
    /// displacement, or `nil` for a register operand or too few bytes.
    static func decode(_ bytes: [UInt8], at start: Int, rex: UInt8) -> (MemoryOperand, length: Int)? {
        guard bytes.count > start else { return nil }
        let modrm = bytes[start]
        let mod = modrm >> 6
        let rm = Int(modrm & 7)
        guard mod != 3 else { return nil }
        var operand = MemoryOperand()
        var position = start + 1
        var displacementSize = [0, 1, 4][Int(mod)]
        if rm == 4 {
            guard bytes.count > position else { return nil }
            let sib = bytes[position]
            position += 1
            operand.scale = 1 << UInt64(sib >> 6)
            let index = Int((sib >> 3) & 7) | (rex & 0x2 != 0 ? 8 : 0)
            operand.index = index == 4 ? nil : index
            let base = Int(sib & 7)
            if base == 5, mod == 0 {
                displacementSize = 4  // no base, a disp32
            } else {
                operand.base = base | (rex & 0x1 != 0 ? 8 : 0)
            }
        } else if rm == 5, mod == 0 {
            operand.ripRelative = true
            displacementSize = 4
        } else {
            operand.base = rm | (rex & 0x1 != 0 ? 8 : 0)
        }
        guard bytes.count >= position + displacementSize else { return nil }
        switch displacementSize {
        case 1:
            operand.displacement = Int64(Int8(bitPattern: bytes[position]))
        case 4:
            let raw = (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[position + $1]) << (8 * UInt32($1)) }
            operand.displacement = Int64(Int32(bitPattern: raw))
        default:
            break
        }
        return (operand, position + displacementSize - start)
    }

    /// The segment the operand uses: its override, else SS for an RSP or RBP
    /// base, else DS (0 = ES, 1 = CS, 2 = SS, 3 = DS, 4 = FS, 5 = GS).
    var segment: Int {
        if let segmentOverride { return segmentOverride }
        if let base, base & 7 == 4 || base & 7 == 5, base < 8 { return 2 }
        return 3
    }

    /// The linear address for `registers` and `special`, with RIP already at
    /// the next instruction (`nextRIP`), or `nil` where this decoder does not
    /// apply (16-bit addressing). In 64-bit mode only FS and GS have a base;
    /// elsewhere the segment's base is added and the address is 32 bits.
    func linearAddress(registers: Registers, special: SpecialRegisters, nextRIP: UInt64) -> UInt64? {
        let longMode = special.cs.l && special.efer & (1 << 10) != 0
        let addressBits: UInt64
        if longMode {
            addressBits = addressSizeOverride ? 32 : 64
        } else {
            // A 32-bit code segment addresses with 32 bits, unless 67 asks for 16.
            guard special.cs.db != addressSizeOverride else { return nil }
            addressBits = 32
        }
        var address = UInt64(bitPattern: displacement)
        if ripRelative, longMode { address &+= nextRIP }
        if let base { address &+= registers[number: base] }
        if let index { address &+= registers[number: index] &* scale }
        if addressBits == 32 { address &= 0xffff_ffff }
        let segments = [special.es, special.cs, special.ss, special.ds, special.fs, special.gs]
        if longMode {
            if segment >= 4 { address &+= segments[segment].base }
        } else {
            address = (address &+ segments[segment].base) & 0xffff_ffff
        }
        return address
    }
}
