import Testing

@testable import SwiftVMM

/// The XSAVE family's memory image against KVM's XSAVE buffer, on plain
/// bytes: what `xsave`/`xsaveopt`/`xsavec` write and what `xrstor` loads and
/// refuses (Intel SDM volume 1, 13.7 and 13.8).
@Suite struct XSAVEImageTests {
    /// This host's layout: AVX (component 2) at 576, 256 bytes; AVX-512's
    /// opmask (5) at 832, 64 bytes; no component aligned in the compacted form.
    let layout = XSAVELayout(
        components: [
            2: .init(offset: 576, size: 256, aligned: false), 5: .init(offset: 832, size: 64, aligned: false),
            6: .init(offset: 896, size: 512, aligned: false), 7: .init(offset: 1408, size: 1024, aligned: false),
        ], formFlags: 0x7)

    /// A KVM buffer with x87 (FCW 0x027f, FIP 0x1122334455667788), MXCSR
    /// 0x1fa0 with mask 0xffff, XMMn byte j = n * 16 + j + 1, AVX byte j = j ^ 0xa5, XSTATE_BV `inUse`.
    func state(inUse: UInt64 = 7) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 4096)
        bytes[0] = 0x7f
        bytes[1] = 0x02
        XSAVEImage.writeU64(0x1122_3344_5566_7788, into: &bytes, at: 8)
        XSAVEImage.writeU32(0x1fa0, into: &bytes, at: 24)
        XSAVEImage.writeU32(0xffff, into: &bytes, at: 28)
        for j in 0..<256 {
            bytes[160 + j] = UInt8(truncatingIfNeeded: j + 1)
            bytes[576 + j] = UInt8(j) ^ 0xa5
        }
        XSAVEImage.writeU64(inUse, into: &bytes, at: 512)
        return bytes
    }

    @Test func xsaveWritesEveryRequestedComponentAndMergesXSTATEBV() {
        var area = [UInt8](repeating: 0xee, count: 1024)
        XSAVEImage.writeU64(0x100 | 4, into: &area, at: 512)  // bit 8 outside RFBM stays; bit 2 becomes XINUSE[2]
        let ranges = XSAVEImage.save(state: state(inUse: 3), into: &area, requested: 7, layout: layout)
        #expect(area[0..<24] == state()[0..<24])
        #expect(area[24..<32] == [0xa0, 0x1f, 0, 0, 0xff, 0xff, 0, 0])
        #expect(area[160..<416] == state()[160..<416])
        // XSAVE writes a component in its initial state too (KVM's buffer holds its initial values).
        #expect(area[576..<832] == state()[576..<832])
        #expect(XSAVEImage.readU64(area, 512) == 0x103)
        // Bytes 416-511 (reserved, available to software) and the rest of the header are not written.
        #expect(area[416..<512].allSatisfy { $0 == 0xee })
        #expect(area[520..<576].allSatisfy { $0 == 0xee })
        #expect(!ranges.contains { $0.overlaps(416..<512) || $0.overlaps(520..<576) })
    }

    @Test func xsaveWithoutREXWStoresThirtyTwoBitPointersAndOutsideLongModeEightRegisters() {
        var area = [UInt8](repeating: 0, count: 1024)
        _ = XSAVEImage.save(state: state(), into: &area, requested: 7, layout: layout, wide: false, longMode: false)
        #expect(area[8..<16] == [0x88, 0x77, 0x66, 0x55, 0, 0, 0, 0], "FIP offset, FCS 0")
        #expect(area[160..<288] == state()[160..<288])
        #expect(area[288..<416].allSatisfy { $0 == 0 }, "XMM8-15 not saved")
        #expect(area[576..<704] == state()[576..<704])
        #expect(area[704..<832].allSatisfy { $0 == 0 }, "YMM8-15 upper halves not saved")
    }

    @Test func partialRequestsLeaveOtherComponentsAlone() {
        var area = [UInt8](repeating: 0xee, count: 1024)
        XSAVEImage.writeU64(4, into: &area, at: 512)
        _ = XSAVEImage.save(state: state(), into: &area, requested: 2, layout: layout)
        #expect(area[0..<24].allSatisfy { $0 == 0xee }, "x87 not requested")
        #expect(area[24..<28] == [0xa0, 0x1f, 0, 0], "MXCSR goes with SSE")
        #expect(area[576..<832].allSatisfy { $0 == 0xee })
        #expect(XSAVEImage.readU64(area, 512) == 6)
    }

    @Test func xsaveoptAndXsavecSkipComponentsInTheirInitialState() {
        var area = [UInt8](repeating: 0xee, count: 1024)
        _ = XSAVEImage.save(state: state(inUse: 2), into: &area, requested: 7, optimized: true, layout: layout)
        #expect(area[0..<24].allSatisfy { $0 == 0xee })
        #expect(area[160..<416] == state()[160..<416])
        #expect(area[576..<832].allSatisfy { $0 == 0xee })
        #expect(XSAVEImage.readU64(area, 512) & 7 == 2, "XINUSE & RFBM; the other bits as they were")

        var compacted = [UInt8](repeating: 0, count: 1024)
        _ = XSAVEImage.save(state: state(), into: &compacted, requested: 0x27, compacted: true, layout: layout)
        #expect(XSAVEImage.readU64(compacted, 512) == 7, "XSTATE_BV: RFBM & XINUSE")
        #expect(XSAVEImage.readU64(compacted, 520) == UInt64(1) << 63 | 0x27, "XCOMP_BV: compacted bit | RFBM")
        #expect(compacted[576..<832] == state()[576..<832], "AVX first after the header")
        #expect(XSAVELayout(components: layout.components).compactedOffsets(0x24) == [2: 576, 5: 832])
    }

    @Test func compactedOffsetsHonourAlignment() {
        let aligned = XSAVELayout(components: [
            2: .init(offset: 576, size: 200, aligned: false), 5: .init(offset: 1024, size: 64, aligned: true),
        ])
        #expect(aligned.compactedOffsets(0x24) == [2: 576, 5: 832])  // 776 rounded up to 832
        #expect(aligned.compactedOffsets(0x8) == nil, "component 3 unknown")
    }

    @Test func xrstorLoadsRequestedComponentsAndInitializesTheRest() throws {
        var area = [UInt8](repeating: 0, count: 1024)
        _ = XSAVEImage.save(state: state(), into: &area, requested: 7, layout: layout)
        XSAVEImage.writeU64(5, into: &area, at: 512)  // SSE in its initial state in the image
        var loaded = [UInt8](repeating: 0x33, count: 4096)
        XSAVEImage.writeU32(0xffff, into: &loaded, at: 28)
        XSAVEImage.writeU64(0x7, into: &loaded, at: 512)
        try XSAVEImage.restore(area, into: &loaded, requested: 7, xcr0: 7, layout: layout)
        #expect(loaded[0..<24] == state()[0..<24])
        #expect(loaded[32..<160].allSatisfy { $0 == 0 })
        #expect(XSAVEImage.readU32(loaded, 24) == 0x1fa0, "the standard form loads MXCSR whatever XSTATE_BV[1] says")
        #expect(loaded[160..<416].allSatisfy { $0 == 0 }, "XMM initialized")
        #expect(loaded[576..<832] == state()[576..<832])
        #expect(loaded[832..<900].allSatisfy { $0 == 0x33 }, "components outside RFBM untouched")
        // SSE stays in use: MXCSR is not 0x1f80.
        #expect(XSAVEImage.readU64(loaded, 512) == 7)

        // An all-initial image: x87 back to FCW 0x037f, every requested bit clear.
        var initial = [UInt8](repeating: 0, count: 1024)
        XSAVEImage.writeU32(0x1f80, into: &initial, at: 24)
        try XSAVEImage.restore(initial, into: &loaded, requested: 7, xcr0: 7, layout: layout)
        #expect(loaded[0..<2] == [0x7f, 0x03])
        #expect(loaded[2..<24].allSatisfy { $0 == 0 })
        #expect(loaded[576..<832].allSatisfy { $0 == 0 })
        #expect(XSAVEImage.readU64(loaded, 512) == 0)
    }

    @Test func xrstorFromTheCompactedForm() throws {
        var area = [UInt8](repeating: 0, count: 1024)
        _ = XSAVEImage.save(state: state(), into: &area, requested: 0x27, compacted: true, layout: layout)
        var loaded = [UInt8](repeating: 0, count: 4096)
        try XSAVEImage.restore(area, into: &loaded, requested: 7, xcr0: 0x27, layout: layout)
        #expect(loaded[160..<416] == state()[160..<416])
        #expect(loaded[576..<832] == state()[576..<832])
        #expect(XSAVEImage.restoreExtent(legacyAndHeader: Array(area[0..<576]), requested: 7, layout: layout) == 832)
    }

    @Test func xrstorRefusesWhatTheCPURefuses() {
        func refused(_ change: (inout [UInt8]) -> Void, requested: UInt64 = 7, xcr0: UInt64 = 7) -> Bool {
            var area = [UInt8](repeating: 0, count: 1024)
            XSAVEImage.writeU32(0x1f80, into: &area, at: 24)
            XSAVEImage.writeU64(3, into: &area, at: 512)
            change(&area)
            var loaded = state()
            let before = loaded
            do {
                try XSAVEImage.restore(area, into: &loaded, requested: requested, xcr0: xcr0, layout: layout)
                return false
            } catch {
                return loaded == before
            }
        }
        #expect(!refused { _ in })
        #expect(refused { XSAVEImage.writeU64(8, into: &$0, at: 512) }, "XSTATE_BV outside XCR0")
        #expect(refused { XSAVEImage.writeU64(1, into: &$0, at: 520) }, "XCOMP_BV set in the standard form")
        #expect(refused { $0[530] = 1 }, "header bytes 23:8 not zero")
        #expect(refused { XSAVEImage.writeU32(0x1_0000, into: &$0, at: 24) }, "MXCSR reserved bit")
        #expect(!refused({ XSAVEImage.writeU32(0x1_0000, into: &$0, at: 24) }, requested: 1), "MXCSR not loaded without SSE or AVX")
        #expect(refused { XSAVEImage.writeU64(1 << 63 | 0x8, into: &$0, at: 520) }, "XCOMP_BV outside XCR0")
        #expect(refused { XSAVEImage.writeU64(1 << 63 | 1, into: &$0, at: 520) }, "XSTATE_BV outside XCOMP_BV")
        #expect(
            refused {
                XSAVEImage.writeU64(1 << 63 | 3, into: &$0, at: 520)
                $0[560] = 1
            }, "compacted header bytes 63:16 not zero")
    }

    @Test func extentsCoverTheRequestedComponents() {
        #expect(XSAVEImage.saveExtent(requested: 3, compacted: false, layout: layout) == 576)
        #expect(XSAVEImage.saveExtent(requested: 0x27, compacted: false, layout: layout) == 896)
        #expect(XSAVEImage.saveExtent(requested: 0x23, compacted: true, layout: layout) == 640)
        #expect(XSAVEImage.saveExtent(requested: 0x8, compacted: false, layout: layout) == nil)
    }

    @Test func ldmxcsrLoadsMXCSRAndMarksSSEInUseAndRefusesReservedBits() throws {
        var bytes = state(inUse: 1)
        try XSAVEImage.loadMXCSR(0xff80, into: &bytes)
        #expect(XSAVEImage.readU32(bytes, 24) == 0xff80 && XSAVEImage.storedMXCSR(bytes) == 0xff80)
        #expect(XSAVEImage.readU64(bytes, 512) == 3, "SSE joins x87 in XSTATE_BV, so KVM loads MXCSR")
        #expect(XSAVEImage.readU32(bytes, 28) == 0xffff && bytes[160] == 1, "the mask and XMM0 are untouched")
        // Bit 16 is reserved whatever the mask: #GP(0), the buffer unchanged.
        let before = bytes
        #expect(throws: XSAVEImage.Fault.generalProtection) { try XSAVEImage.loadMXCSR(0x1_1f80, into: &bytes) }
        #expect(bytes == before)
        // MXCSR_MASK 0 stands for 0xffbf: DAZ (bit 6) is then reserved.
        XSAVEImage.writeU32(0, into: &bytes, at: 28)
        #expect(throws: XSAVEImage.Fault.generalProtection) { try XSAVEImage.loadMXCSR(0x1fc0, into: &bytes) }
        try XSAVEImage.loadMXCSR(0x1f80, into: &bytes)
        #expect(XSAVEImage.storedMXCSR(bytes) == 0x1f80)
        // A buffer without a header cannot be loaded.
        var short = [UInt8](repeating: 0, count: 64)
        #expect(throws: XSAVEImage.Fault.generalProtection) { try XSAVEImage.loadMXCSR(0x1f80, into: &short) }
        #expect(XSAVEImage.storedMXCSR([]) == 0x1f80)
    }
}
