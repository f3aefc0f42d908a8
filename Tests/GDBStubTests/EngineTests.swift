import GDBStub
import Testing
import VMCore

/// The protocol engine against a fake target: replies, register and memory
/// access, resumes, breakpoints in the four slots, stop replies.
@Suite struct EngineTests {
    let target = FakeTarget()
    let engine: GDBEngine

    init() { engine = GDBEngine(target: target, onStop: { _ in }) }

    func send(_ text: String) -> String {
        switch engine.handle(GDBCommand(payload: Array(text.utf8))) {
        case .reply(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .resumed: return "<resumed>"
        case .replyAndClose(let bytes): return String(decoding: bytes, as: UTF8.self) + "<closed>"
        case .close: return "<closed>"
        }
    }

    @Test func advertisesFeaturesAndDescribesTheCPU() {
        let supported = send("qSupported:swbreak+;hwbreak+")
        for feature in ["PacketSize=4000", "qXfer:features:read+", "swbreak+", "hwbreak+", "vContSupported+", "QStartNoAckMode+"] {
            #expect(supported.contains(feature), "\(supported)")
        }
        #expect(send("vCont?") == "vCont;c;C;s;S")
        #expect(send("?") == "T05thread:1;")
        #expect(send("qAttached") == "1")
        var xml = ""
        var offset = 0
        while true {
            let chunk = send("qXfer:features:read:target.xml:\(String(offset, radix: 16)),200")
            xml += chunk.dropFirst()
            offset += chunk.utf8.count - 1
            if chunk.hasPrefix("l") { break }
            #expect(chunk.hasPrefix("m"))
        }
        #expect(xml == X86TargetDescription.xml)
        for name in ["rip", "eflags", "fs_base", "gs_base", "cr0", "cr2", "cr3", "cr4", "efer", "st7", "xmm15", "mxcsr"] {
            #expect(xml.contains("name=\"\(name)\""), "\(name)")
        }
        #expect(send("qXfer:features:read:other.xml:0,10") == "E00")
        #expect(send("qXfer:features:read:target.xml:100000,10") == "l")
    }

    @Test func readsAndWritesRegistersOfEachThread() {
        let g = send("g")
        #expect(g.count == X86RegisterFile.totalSize * 2)
        // rip (register 16) comes after 16 eight-byte registers, little-endian.
        #expect(g.dropFirst(16 * 16).prefix(16) == "007c000000000000")
        #expect(send("p10") == "007c000000000000")
        #expect(send("Hg2") == "OK")
        #expect(send("p10") == "f0ff000000000000")
        #expect(send("P0=efbeadde00000000") == "OK")
        #expect(target.registerFiles[1]["rax"] == 0xdead_beef)
        #expect(target.registerFiles[0]["rax"] == 0)
        #expect(send("P10=00") == "E16", "a value of the wrong size")
        #expect(send("p999") == "E16")
        #expect(send("Hg3") == "E16", "there is no thread 3")
        #expect(send("qfThreadInfo") == "m1,2")
        #expect(send("qsThreadInfo") == "l")
        #expect(send("T2") == "OK")
        #expect(send("T3") == "E16")
        // Without the x87/SSE state, those registers read as unavailable.
        target.registerFiles[1].floatingPointAvailable = false
        #expect(send("p18") == String(repeating: "x", count: 20))
    }

    @Test func readsAndWritesMemory() {
        #expect(send("M100,3:010203") == "OK")
        #expect(send("m100,4") == "01020300")
        #expect(send("X104,0:") == "OK")
        #expect(send("X104,1:A") == "OK")
        #expect(target.memory[0x104] == 0x41)
        #expect(send("mfffff,4") == "E0e", "unmapped")
        #expect(send("m0,ffffff") == "E01", "longer than one packet may ask for")
    }

    @Test func resumesAndReportsStops() {
        #expect(send("vCont;s:2;c") == "<resumed>")
        #expect(target.resumed.last! == [.continue, .step])
        #expect(send("g") == "E10", "the target runs: only a stop reply may come")
        #expect(
            String(decoding: engine.stopped(DebugStop(vcpu: 1, reason: .step)), as: UTF8.self) == "T05thread:2;")
        #expect(send("p10") == "f0ff000000000000", "the thread that stopped is the current one")
        #expect(send("s") == "<resumed>")
        #expect(target.resumed.last! == [.continue, .step])
        _ = engine.stopped(DebugStop(vcpu: 0, reason: .interrupted))
        #expect(send("?") == "T02thread:1;")
        #expect(send("c") == "<resumed>")
        #expect(target.resumed.last! == [.continue, .continue])
        #expect(String(decoding: engine.stopped(DebugStop(vcpu: 0, reason: .exited(status: 0x2a))), as: UTF8.self) == "W2a")
        #expect(send("c") == "E03", "nothing left to run")
    }

    @Test func breakpointsShareFourSlotsAndSoftwareOnesFallBackToInt3() {
        #expect(send("Z0,7c00,1") == "OK")
        #expect(target.slots.compactMap { $0 } == [HardwareBreakpoint(address: 0x7c00)])
        #expect(send("Z1,7c10,1") == "OK")
        #expect(send("Z2,1000,4") == "OK")
        #expect(send("Z4,2000,8") == "OK")
        #expect(target.slots[2] == HardwareBreakpoint(address: 0x1000, trigger: .write, length: 4))
        #expect(target.slots[3] == HardwareBreakpoint(address: 0x2000, trigger: .readWrite, length: 8))
        // Slots full: another Z0 is planted as int3.
        #expect(send("Z0,7c20,1") == "OK")
        #expect(target.planted == [0x7c20])
        // A fifth hardware request takes the Z0's slot, which becomes an int3.
        #expect(send("Z1,7c30,1") == "OK")
        #expect(target.planted == [0x7c20, 0x7c00])
        #expect(target.slots[0] == HardwareBreakpoint(address: 0x7c30))
        // Nothing left to move: refused clearly.
        #expect(send("Z2,3000,4") == "E16")
        #expect(send("Z2,1001,4") == "E16", "unaligned")
        #expect(send("Z2,1000,3") == "E16", "x86 watches 1, 2, 4 or 8 bytes")
        #expect(send("Z3,1000,4") == "E16", "x86 cannot watch reads alone")
        // Stop replies say which kind fired.
        func reply(_ slot: Int) -> String {
            _ = send("c")
            return String(decoding: engine.stopped(DebugStop(vcpu: 0, reason: .slot(slot))), as: UTF8.self)
        }
        #expect(reply(0) == "T05thread:1;hwbreak:;")
        #expect(reply(2) == "T05thread:1;watch:1000;")
        #expect(reply(3) == "T05thread:1;awatch:2000;")
        #expect(send("z0,7c00,1") == "OK")
        #expect(target.planted == [0x7c20])
        #expect(send("z2,1000,4") == "OK")
        #expect(target.slots[2] == nil)
        #expect(send("D") == "OK<closed>")
        #expect(target.detached && target.planted.isEmpty && target.slots.allSatisfy { $0 == nil })
    }

    @Test func noAckModeKillAndMalformedPackets() {
        #expect(engine.acknowledges)
        #expect(send("QStartNoAckMode") == "OK")
        #expect(!engine.acknowledges)
        #expect(send("vMustReplyEmpty") == "")
        #expect(send("m7c00") == "E01")
        #expect(send("k") == "<closed>")
        #expect(target.killed)
    }
}
