/// The XSAVE family's memory image, converted to and from KVM's XSAVE buffer
/// (`KVM_GET_XSAVE2`: the standard format, every component the guest may
/// enable, XSTATE_BV saying which are in use), as the Intel SDM (volume 1,
/// chapter 13, "Operation of XSAVE", "Operation of XRSTOR") describes it.
/// Plain bytes in and out: no KVM, no guest memory.
enum XSAVEImage {
    /// What the instruction raises instead of completing.
    enum Fault: Error, Hashable, Sendable {
        /// #GP(0): a header or MXCSR value XRSTOR refuses.
        case generalProtection
    }

    static let headerOffset = XSAVELayout.headerOffset
    static let mxcsrOffset = 24
    static let xmmOffset = 160
    static let defaultMXCSR: UInt32 = 0x1f80
    static let compactedBit: UInt64 = 1 << 63

    /// How many bytes of the guest's area a save of `requested` components
    /// covers, from its start (the legacy region and header at least), or
    /// `nil` if the layout does not know one of them.
    static func saveExtent(requested: UInt64, compacted: Bool, layout: XSAVELayout) -> Int? {
        let extended = requested & ~3
        guard let offsets = compacted ? layout.compactedOffsets(extended) : layout.standardOffsets(extended) else { return nil }
        return offsets.reduce(XSAVELayout.legacyAndHeaderSize) { max($0, $1.value + (layout.components[$1.key]?.size ?? 0)) }
    }

    /// How many bytes a restore of `requested` components from an area whose
    /// first 576 bytes are `legacyAndHeader` reads, or `nil` if the layout
    /// does not know a component it would read.
    static func restoreExtent(legacyAndHeader: [UInt8], requested: UInt64, layout: XSAVELayout) -> Int? {
        let stateBV = readU64(legacyAndHeader, headerOffset)
        let compBV = readU64(legacyAndHeader, headerOffset + 8)
        let loaded = requested & stateBV & ~3
        if compBV & compactedBit != 0 {
            guard let offsets = layout.compactedOffsets(compBV & ~compactedBit & ~3) else { return nil }
            return offsets.filter { loaded & (1 << UInt64($0.key)) != 0 }
                .reduce(XSAVELayout.legacyAndHeaderSize) { max($0, $1.value + (layout.components[$1.key]?.size ?? 0)) }
        }
        return saveExtent(requested: loaded, compacted: false, layout: layout)
    }

    /// Writes what `xsave` (`optimized`: `xsaveopt`; `compacted`: `xsavec`)
    /// of the `requested` components (RFBM, already ANDed with XCR0) stores,
    /// from KVM's buffer `state` into `area` (the guest's bytes from the
    /// operand's address, `saveExtent` long), and returns the byte ranges of
    /// `area` it wrote. The x87 instruction and data pointers are 64-bit with
    /// `wide` (REX.W), else 32-bit offsets with zero selectors. Outside
    /// 64-bit mode only XMM0-7 (and their upper halves) are saved.
    static func save(
        state: [UInt8], into area: inout [UInt8], requested: UInt64, optimized: Bool = false, compacted: Bool = false,
        layout: XSAVELayout, wide: Bool = true, longMode: Bool = true
    ) -> [Range<Int>] {
        let inUse = readU64(state, headerOffset)
        // XSAVEOPT and XSAVEC leave components in their initial state out (the init optimization).
        let written = optimized || compacted ? requested & inUse : requested
        var ranges: [Range<Int>] = []
        func copy(_ from: Range<Int>, to offset: Int) {
            area.replaceSubrange(offset..<offset + from.count, with: state[from])
            ranges.append(offset..<offset + from.count)
        }
        if written & 1 != 0 {
            copy(0..<24, to: 0)
            copy(32..<160, to: 32)
            if !wide {
                // FIP and FDP as 32-bit offsets, FCS and FDS (not kept by KVM) zero.
                for field in [8, 16] { area.replaceSubrange(field + 4..<field + 8, with: [0, 0, 0, 0]) }
            }
        }
        if requested & 6 != 0 { copy(mxcsrOffset..<mxcsrOffset + 8, to: mxcsrOffset) }
        if written & 2 != 0 { copy(xmmOffset..<xmmOffset + (longMode ? 256 : 128), to: xmmOffset) }
        let extended = requested & ~3
        let offsets = (compacted ? layout.compactedOffsets(extended) : layout.standardOffsets(extended)) ?? [:]
        for (i, offset) in offsets.sorted(by: { $0.key < $1.key }) where written & (1 << UInt64(i)) != 0 {
            guard let component = layout.components[i], let size = savedSize(i, component, longMode: longMode), size > 0 else {
                continue
            }
            copy(component.offset..<component.offset + size, to: offset)
        }
        if compacted {
            writeU64(requested & inUse, into: &area, at: headerOffset)
            writeU64(compactedBit | requested, into: &area, at: headerOffset + 8)
            ranges.append(headerOffset..<headerOffset + 16)
        } else {
            // Bits outside RFBM keep the value they had in memory.
            let old = readU64(area, headerOffset)
            writeU64(old & ~requested | inUse & requested, into: &area, at: headerOffset)
            ranges.append(headerOffset..<headerOffset + 8)
        }
        return ranges
    }

    /// Applies what `xrstor` of the `requested` components (RFBM, already
    /// ANDed with `xcr0`) loads from `area` (the guest's bytes, at least
    /// `restoreExtent` long) to KVM's buffer `state`, including its
    /// XSTATE_BV (set for each requested component that is not in its initial
    /// state after the load). Throws, leaving `state` alone, where the CPU
    /// raises #GP: XSTATE_BV bits outside XCR0, reserved header bytes set, a
    /// compacted image with XCOMP_BV outside XCR0 or XSTATE_BV outside
    /// XCOMP_BV, or an MXCSR with reserved bits.
    static func restore(
        _ area: [UInt8], into state: inout [UInt8], requested: UInt64, xcr0: UInt64, layout: XSAVELayout,
        wide: Bool = true, longMode: Bool = true
    ) throws(Fault) {
        let stateBV = readU64(area, headerOffset)
        let compBV = readU64(area, headerOffset + 8)
        let compacted = compBV & compactedBit != 0
        let offsets: [Int: Int]
        if compacted {
            let components = compBV & ~compactedBit
            guard components & ~xcr0 == 0, stateBV & ~components == 0,
                area[headerOffset + 16..<headerOffset + 64].allSatisfy({ $0 == 0 }),
                let compactedOffsets = layout.compactedOffsets(components & ~3)
            else { throw .generalProtection }
            offsets = compactedOffsets
        } else {
            guard stateBV & ~xcr0 == 0, area[headerOffset + 8..<headerOffset + 24].allSatisfy({ $0 == 0 }),
                let standardOffsets = layout.standardOffsets(requested & stateBV & ~3)
            else { throw .generalProtection }
            offsets = standardOffsets
        }
        // MXCSR: the standard form loads it whenever SSE or AVX is requested;
        // the compacted form treats it as part of SSE state.
        var mxcsr: UInt32?
        if compacted {
            if requested & 2 != 0 { mxcsr = stateBV & 2 != 0 ? readU32(area, mxcsrOffset) : defaultMXCSR }
        } else if requested & 6 != 0 {
            mxcsr = readU32(area, mxcsrOffset)
        }
        let storedMask = readU32(state, mxcsrOffset + 4)
        if let mxcsr, mxcsr & ~(storedMask == 0 ? 0xffbf : storedMask) != 0 { throw .generalProtection }

        var result = state
        func load(_ range: Range<Int>, from offset: Int?) {
            if let offset {
                result.replaceSubrange(range, with: area[offset..<offset + range.count])
            } else {
                result.replaceSubrange(range, with: repeatElement(0, count: range.count))
            }
        }
        var inUse = readU64(state, headerOffset)
        if requested & 1 != 0 {
            let loaded = stateBV & 1 != 0
            load(0..<24, from: loaded ? 0 : nil)
            load(32..<160, from: loaded ? 32 : nil)
            if !loaded {
                result[0] = 0x7f  // FCW 0x037f
                result[1] = 0x03
            } else if !wide {
                for field in [8, 16] { result.replaceSubrange(field + 4..<field + 8, with: [0, 0, 0, 0]) }
            }
            let initial =
                result[0] == 0x7f && result[1] == 0x03 && result[2..<24].allSatisfy { $0 == 0 }
                && result[32..<160].allSatisfy { $0 == 0 }
            inUse = initial ? inUse & ~1 : inUse | 1
        }
        if let mxcsr { writeU32(mxcsr, into: &result, at: mxcsrOffset) }
        if requested & 2 != 0 {
            load(xmmOffset..<xmmOffset + (longMode ? 256 : 128), from: stateBV & 2 != 0 ? xmmOffset : nil)
        }
        for i in 2..<63 where requested & (1 << UInt64(i)) != 0 {
            guard let component = layout.components[i] else { continue }
            if let size = savedSize(i, component, longMode: longMode), size > 0 {
                load(component.offset..<component.offset + size, from: stateBV & (1 << UInt64(i)) != 0 ? offsets[i] : nil)
            }
            let initial = result[component.offset..<component.offset + component.size].allSatisfy { $0 == 0 }
            inUse = initial ? inUse & ~(1 << UInt64(i)) : inUse | 1 << UInt64(i)
        }
        if requested & 6 != 0 {
            // SSE is in use if an XMM register or MXCSR is not in its initial state.
            let initial = result[xmmOffset..<xmmOffset + 256].allSatisfy { $0 == 0 } && readU32(result, mxcsrOffset) == defaultMXCSR
            inUse = initial ? inUse & ~2 : inUse | 2
        }
        writeU64(inUse, into: &result, at: headerOffset)
        state = result
    }

    /// The bytes of component `i` the CPU saves or loads: outside 64-bit
    /// mode only the halves for registers 0-7 of the AVX and AVX-512 upper
    /// parts, and none of ZMM16-31.
    static func savedSize(_ i: Int, _ component: XSAVELayout.Component, longMode: Bool) -> Int? {
        guard !longMode else { return component.size }
        switch i {
        case 2, 6: return component.size / 2
        case 7: return 0
        default: return component.size
        }
    }

    /// MXCSR as STMXCSR stores it from KVM's buffer `state`.
    static func storedMXCSR(_ state: [UInt8]) -> UInt32 {
        state.count >= mxcsrOffset + 4 ? readU32(state, mxcsrOffset) : defaultMXCSR
    }

    /// LDMXCSR: `state` with MXCSR set to `value`, and SSE marked in use in
    /// XSTATE_BV so that `KVM_SET_XSAVE` loads it (KVM takes MXCSR only with
    /// x87, SSE or AVX state present). Throws, leaving `state` alone, where
    /// `value` sets a bit MXCSR_MASK does not allow (#GP(0)), or where the
    /// buffer is too short to hold the header.
    static func loadMXCSR(_ value: UInt32, into state: inout [UInt8]) throws(Fault) {
        guard state.count >= XSAVELayout.legacyAndHeaderSize else { throw .generalProtection }
        let storedMask = readU32(state, mxcsrOffset + 4)
        guard value & ~(storedMask == 0 ? 0xffbf : storedMask) == 0 else { throw .generalProtection }
        writeU32(value, into: &state, at: mxcsrOffset)
        writeU64(readU64(state, headerOffset) | 2, into: &state, at: headerOffset)
    }

    static func readU64(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
        guard bytes.count >= offset + 8 else { return 0 }
        return (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
    }

    static func readU32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        guard bytes.count >= offset + 4 else { return 0 }
        return (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) }
    }

    static func writeU64(_ value: UInt64, into bytes: inout [UInt8], at offset: Int) {
        for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }

    static func writeU32(_ value: UInt32, into bytes: inout [UInt8], at offset: Int) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
    }
}
