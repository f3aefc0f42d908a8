import GDBStub
import Testing

/// Framing: checksums, acknowledgements, interrupts, escapes and run-length encoding, in any split.
@Suite struct PacketTests {
    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func framesAndChecksums() {
        #expect(GDBPacketEncoder.frame(bytes("OK")) == bytes("$OK#9a"))
        // `$`, `#`, `}` and `*` are escaped, and the checksum covers what was sent.
        #expect(GDBPacketEncoder.frame(bytes("a#b")) == bytes("$a}\u{03}b#") + bytes(hex(0x61 + 0x7d + 0x03 + 0x62)))
    }

    func hex(_ sum: Int) -> String { String(format2: UInt8(truncatingIfNeeded: sum)) }

    @Test func decodesPacketsAcksAndInterruptsAcrossReads() {
        var decoder = GDBPacketDecoder()
        var inputs: [GDBInput] = []
        for chunk in ["+$g#", "67", "-\u{03}$m0,4#fd", "$qC#b4"] { inputs += decoder.feed(bytes(chunk)) }
        #expect(
            inputs == [.acknowledged, .packet(bytes("g")), .retransmitRequested, .interrupt, .packet(bytes("m0,4")), .packet(bytes("qC"))])
    }

    @Test func aWrongChecksumIsReportedAndTheNextPacketStillParses() {
        var decoder = GDBPacketDecoder()
        #expect(decoder.feed(bytes("$g#00$g#67")) == [.badChecksum, .packet(bytes("g"))])
        #expect(decoder.feed(bytes("$g#zz")) == [.badChecksum])
    }

    @Test func escapesAndRunLengthAreUndone() {
        // "0* " is "0" and 3 more (space is 32 = 29 + 3); `}` escapes the next byte XOR 0x20.
        #expect(GDBPacketDecoder.unescape(bytes("0* ")) == bytes("0000"))
        #expect(GDBPacketDecoder.unescape([0x58, 0x7d, 0x5d, 0x7d, 0x03]) == [0x58, 0x7d, 0x23])
        var decoder = GDBPacketDecoder()
        let raw: [UInt8] = bytes("X10,1:") + [0x7d, 0x04]
        let sum = raw.reduce(UInt8(0), &+)
        #expect(decoder.feed(bytes("$") + raw + bytes("#" + hex(Int(sum)))) == [.packet(bytes("X10,1:") + [0x24])])
    }

    @Test func anOversizedPacketIsDroppedWithBoundedMemory() {
        var decoder = GDBPacketDecoder(maximumPayload: 16)
        let inputs = decoder.feed(bytes("$" + String(repeating: "A", count: 100_000) + "#00$g#67"))
        #expect(inputs == [.oversized, .packet(bytes("g"))])
    }

    @Test func aDebuggerGoneMidPacketLeavesTheDecoderInsideIt() {
        var decoder = GDBPacketDecoder()
        #expect(decoder.feed(bytes("$m7c00,")) == [])
        #expect(decoder.isInsidePacket)
    }
}

extension String {
    init(format2 value: UInt8) { self = String(decoding: GDBHex.encode([value]), as: UTF8.self) }
}
