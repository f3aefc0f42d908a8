import GDBStub
import Testing

/// The parser: every packet the stub implements, and refusals of bad ones.
@Suite struct CommandTests {
    func parse(_ text: String) -> GDBCommand { GDBCommand(payload: Array(text.utf8)) }

    @Test func parsesThePacketsTheStubImplements() {
        #expect(parse("?") == .haltReason)
        #expect(parse("g") == .readRegisters)
        #expect(parse("G0102") == .writeRegisters([1, 2]))
        #expect(parse("p10") == .readRegister(16))
        #expect(parse("P10=0100000000000000") == .writeRegister(16, [1, 0, 0, 0, 0, 0, 0, 0]))
        #expect(parse("m7c00,10") == .readMemory(address: 0x7c00, length: 16))
        #expect(parse("M7c00,2:cc90") == .writeMemory(address: 0x7c00, data: [0xcc, 0x90]))
        #expect(parse("X7c00,2:ab") == .writeMemory(address: 0x7c00, data: Array("ab".utf8)))
        #expect(parse("c") == .resume([.init(.continue, thread: nil)]))
        #expect(parse("s") == .resume([.init(.step, thread: nil)]))
        #expect(parse("C05") == .resume([.init(.continue, thread: nil)]))
        #expect(parse("vCont?") == .vContQuery)
        #expect(parse("vCont;s:2;c") == .resume([.init(.step, thread: .thread(2)), .init(.continue, thread: nil)]))
        #expect(parse("vCont;S05:1;C05:-1") == .resume([.init(.step, thread: .thread(1)), .init(.continue, thread: .all)]))
        #expect(parse("Z0,7c00,1") == .insertBreakpoint(.software, address: 0x7c00, length: 1))
        #expect(parse("z2,1000,4") == .removeBreakpoint(.writeWatchpoint, address: 0x1000, length: 4))
        #expect(parse("Z4,1000,8;X1,0") == .insertBreakpoint(.accessWatchpoint, address: 0x1000, length: 8))
        #expect(parse("qfThreadInfo") == .threadInfoFirst)
        #expect(parse("qsThreadInfo") == .threadInfoNext)
        #expect(parse("Hg2") == .setThread(general: true, .thread(2)))
        #expect(parse("Hc-1") == .setThread(general: false, .all))
        #expect(parse("T1") == .threadAlive(.thread(1)))
        #expect(parse("qAttached") == .attached)
        #expect(parse("D") == .detach)
        #expect(parse("k") == .kill)
        #expect(parse("QStartNoAckMode") == .startNoAckMode)
        #expect(parse("qXfer:features:read:target.xml:0,ffb") == .readFeatures(annex: "target.xml", offset: 0, length: 0xffb))
        #expect(parse("qSupported:multiprocess+;swbreak+") == .querySupported(features: ["multiprocess+", "swbreak+"]))
    }

    @Test func unknownPacketsAreUnsupportedAndBrokenOnesMalformed() {
        #expect(parse("") == .unsupported)
        #expect(parse("vMustReplyEmpty") == .unsupported)
        #expect(parse("qTStatus") == .unsupported)
        #expect(parse("Z9,0,1") == .unsupported)
        for broken in [
            "m", "m7c00", "mzz,1", "m0,ffffffff", "m11111111111111111,1", "M0,2:cc", "M0,1:zz", "X0,5:ab", "p", "pzz", "P10", "c7c00",
            "Hx1", "Hgq", "vCont;", "vCont;q", "vCont;s:zz", "Z0,zz,1", "Z0", "qXfer:features:read:target.xml:zz",
        ] {
            #expect(parse(broken) == .malformed, "\(broken)")
        }
    }
}
