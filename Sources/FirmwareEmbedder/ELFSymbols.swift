// The symbol table of a linked guest, read from its ELF file so that the
// generated `FirmwareImage` can carry it (`FirmwareImage.symbol(_:)`).
//
// A small reader rather than `llvm-nm`: the plugin only gets clang and ld.lld
// from the toolchain by name, and the ELF symbol table is a fixed layout
// (System V gABI, "Symbol Table"): 24-byte entries in ELF64, 16-byte in ELF32.

/// Reads the defined, named symbols of an ELF32 or ELF64 little-endian file.
enum ELFSymbols {
    /// Symbol type `STT_SECTION` and `STT_FILE`: names of sections and
    /// source files, not places in the guest.
    private static let sectionType: UInt8 = 3
    private static let fileType: UInt8 = 4
    /// `SHN_UNDEF`, and `SHN_ABS` (a constant, not an address).
    private static let undefinedSection: UInt16 = 0
    private static let absoluteSection: UInt16 = 0xfff1
    /// `SHT_SYMTAB`.
    private static let symbolTableType: UInt32 = 2

    /// Name -> address of every defined symbol that names a place in the
    /// image; nil when `bytes` is not an ELF file this reader understands.
    /// When a name occurs twice (two local labels), the first one is kept.
    static func read(_ bytes: [UInt8]) -> [String: UInt64]? {
        guard bytes.count >= 52, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46, bytes[5] == 1 else { return nil }
        let is64 = bytes[4] == 2
        func integer(_ offset: Int, _ size: Int) -> UInt64? {
            guard offset >= 0, size <= 8, offset + size <= bytes.count else { return nil }
            var value: UInt64 = 0
            for i in (0..<size).reversed() { value = value << 8 | UInt64(bytes[offset + i]) }
            return value
        }
        guard let sectionTable = integer(is64 ? 0x28 : 0x20, is64 ? 8 : 4),
            let entrySize = integer(is64 ? 0x3a : 0x2e, 2), let sectionCount = integer(is64 ? 0x3c : 0x30, 2)
        else { return nil }
        func section(_ index: UInt64) -> (type: UInt32, offset: Int, size: Int, link: UInt64)? {
            let base = Int(sectionTable) + Int(index) * Int(entrySize)
            guard let type = integer(base + 4, 4), let offset = integer(base + (is64 ? 0x18 : 0x10), is64 ? 8 : 4),
                let size = integer(base + (is64 ? 0x20 : 0x14), is64 ? 8 : 4), let link = integer(base + (is64 ? 0x28 : 0x18), 4),
                offset <= UInt64(bytes.count), size <= UInt64(bytes.count)
            else { return nil }
            return (UInt32(type), Int(offset), Int(size), link)
        }
        var symbols: [String: UInt64] = [:]
        for index in 0..<sectionCount {
            guard let table = section(index), table.type == symbolTableType, let strings = section(table.link) else { continue }
            let symbolSize = is64 ? 24 : 16
            for start in stride(from: table.offset, to: table.offset + table.size - symbolSize + 1, by: symbolSize) {
                guard let nameOffset = integer(start, 4),
                    let info = integer(start + (is64 ? 4 : 12), 1),
                    let sectionIndex = integer(start + (is64 ? 6 : 14), 2),
                    let value = integer(start + (is64 ? 8 : 4), is64 ? 8 : 4)
                else { continue }
                let type = UInt8(info & 0xf)
                guard type != sectionType, type != fileType, UInt16(sectionIndex) != undefinedSection,
                    UInt16(sectionIndex) != absoluteSection
                else { continue }
                let nameStart = strings.offset + Int(nameOffset)
                guard nameStart < min(bytes.count, strings.offset + strings.size) else { continue }
                let name = String(decoding: bytes[nameStart...].prefix { $0 != 0 }, as: UTF8.self)
                guard !name.isEmpty, !name.hasPrefix(".L"), symbols[name] == nil else { continue }
                symbols[name] = value
            }
        }
        return symbols
    }
}
