import Devices
import Foundation
import Testing
import VMCore

/// Ports, bits and scan codes written out from the PC AT technical reference
/// and the scan code tables, independently of the implementation.
private enum Keyboard {
    static let data: UInt16 = 0x60, command: UInt16 = 0x64
    static let statusOBF: UInt8 = 0x01
    static let ctrKBDINT: UInt8 = 0x01, ctrSYSFLAG: UInt8 = 0x04, ctrKBDDIS: UInt8 = 0x10, ctrXLATE: UInt8 = 0x40
    static let writeCTR: UInt8 = 0x60, readCTR: UInt8 = 0x20, kbdDisable: UInt8 = 0xad, kbdEnable: UInt8 = 0xae
    static let pulseReset: UInt8 = 0xfe
    /// Ctrl, Alt, Delete make codes in scan code set 2 (what the keyboard
    /// sends; what Firecracker's i8042 delivers) and set 1 (translated).
    static let ctrlAltDelSet2: [UInt8] = [0x14, 0x11, 0xe0, 0x71]
    static let ctrlAltDelSet1: [UInt8] = [0x1d, 0x38, 0xe0, 0x53]
}

/// A controller at 0x60/0x64 with IRQ1 recorded, driven by plain port accesses.
private struct KeyboardRig {
    let bus = PortIOBus()
    let irq1 = RecordingInterruptLine()
    let controller: I8042Controller

    /// A controller whose command byte is `commandByte` (written by the guest, as a driver does).
    init(commandByte: UInt8? = Keyboard.ctrKBDINT | Keyboard.ctrSYSFLAG) throws {
        controller = I8042Controller(keyboardInterrupt: irq1, auxInterrupt: nil)
        try bus.register(controller.dataPort, at: Keyboard.data, length: I8042Controller.Port.portCount)
        try bus.register(controller.statusCommandPort, at: Keyboard.command, length: I8042Controller.Port.portCount)
        if let commandByte {
            write(Keyboard.command, Keyboard.writeCTR)
            write(Keyboard.data, commandByte)
        }
    }

    var status: UInt8 { UInt8(truncatingIfNeeded: bus.read(port: Keyboard.command, size: 1).value) }
    func readData() -> UInt8 { UInt8(truncatingIfNeeded: bus.read(port: Keyboard.data, size: 1).value) }
    @discardableResult
    func write(_ port: UInt16, _ byte: UInt8) -> DeviceRequest? { bus.write(port: port, size: 1, value: UInt64(byte)).request }

    /// What a polling driver reads: data bytes while OBF is set, at most `limit`.
    func drain(limit: Int = 32) -> [UInt8] {
        var bytes: [UInt8] = []
        while status & Keyboard.statusOBF != 0, bytes.count < limit { bytes.append(readData()) }
        return bytes
    }

    /// Rising edges of IRQ1 seen so far.
    var irq1Edges: Int { zip([false] + irq1.levels, irq1.levels).filter { !$0 && $1 }.count }
}

@Suite struct I8042KeyboardTests {
    @Test func ctrlAltDelArrivesAsSet2ScanCodesWithOneIRQ1EdgePerByte() throws {
        let rig = try KeyboardRig()
        #expect(rig.status & Keyboard.statusOBF == 0)
        try rig.controller.sendCtrlAltDel()
        #expect(rig.status & Keyboard.statusOBF != 0)
        #expect(rig.irq1.isHigh)
        var received: [UInt8] = []
        for _ in 0..<4 {
            // An interrupt handler: IRQ1 is high, OBF is set, one byte per interrupt.
            #expect(rig.irq1.isHigh)
            #expect(rig.status & Keyboard.statusOBF != 0)
            received.append(rig.readData())
        }
        #expect(received == Keyboard.ctrlAltDelSet2)
        #expect(rig.status & Keyboard.statusOBF == 0)
        #expect(!rig.irq1.isHigh)
        #expect(rig.irq1Edges == 4)
        #expect(rig.readData() == 0)
    }

    @Test func withTranslationOnTheControllerDeliversSet1() throws {
        let rig = try KeyboardRig(commandByte: Keyboard.ctrKBDINT | Keyboard.ctrSYSFLAG | Keyboard.ctrXLATE)
        try rig.controller.sendCtrlAltDel()
        #expect(rig.drain() == Keyboard.ctrlAltDelSet1)
    }

    @Test func withTheKeyboardInterruptOffOBFStillShowsTheKeys() throws {
        let rig = try KeyboardRig(commandByte: Keyboard.ctrSYSFLAG)
        try rig.controller.sendCtrlAltDel()
        #expect(rig.irq1.levels.allSatisfy { !$0 })
        #expect(rig.drain() == Keyboard.ctrlAltDelSet2)
    }

    @Test func keysWaitWhileTheKeyboardInterfaceIsDisabled() throws {
        // The controller as a BIOS leaves it: keyboard interface disabled.
        let rig = try KeyboardRig(commandByte: nil)
        try rig.controller.sendCtrlAltDel()
        #expect(rig.status & Keyboard.statusOBF == 0)
        #expect(rig.controller.queuedKeyBytes == 4)
        // Enabling it (command 0xae) passes the first byte on, translated as the command byte says.
        rig.write(Keyboard.command, Keyboard.kbdEnable)
        #expect(rig.drain() == Keyboard.ctrlAltDelSet1)

        let viaCommandByte = try KeyboardRig(commandByte: Keyboard.ctrKBDDIS | Keyboard.ctrKBDINT)
        try viaCommandByte.controller.sendCtrlAltDel()
        #expect(viaCommandByte.status & Keyboard.statusOBF == 0 && !viaCommandByte.irq1.isHigh)
        viaCommandByte.write(Keyboard.command, Keyboard.writeCTR)
        viaCommandByte.write(Keyboard.data, Keyboard.ctrKBDINT)
        #expect(viaCommandByte.irq1.isHigh)
        #expect(viaCommandByte.drain() == Keyboard.ctrlAltDelSet2)
    }

    @Test func aFullQueueRefusesTheWholeSequence() throws {
        let rig = try KeyboardRig()
        // 16 bytes of queue plus the one in the output buffer: four sequences fit.
        for _ in 0..<4 { try rig.controller.sendCtrlAltDel() }
        #expect(rig.controller.queuedKeyBytes == 15)
        #expect(throws: I8042Controller.KeyboardQueueFull(needed: 4, free: 1)) { try rig.controller.sendCtrlAltDel() }
        #expect(rig.controller.queuedKeyBytes == 15)
        #expect(rig.drain() == Array([[UInt8]](repeating: Keyboard.ctrlAltDelSet2, count: 4).joined()))
        try rig.controller.sendCtrlAltDel()
        #expect(rig.drain() == Keyboard.ctrlAltDelSet2)
    }

    @Test func aControllerReplyTakesTheOutputBufferAndTheQueueGoesOnAfterIt() throws {
        let rig = try KeyboardRig()
        try rig.controller.sendCtrlAltDel()
        rig.write(Keyboard.command, Keyboard.readCTR)
        // The reply replaced the first key byte; the rest follow it.
        #expect(rig.drain() == [Keyboard.ctrKBDINT | Keyboard.ctrSYSFLAG] + Keyboard.ctrlAltDelSet2.dropFirst())
    }

    @Test func theResetPulseStillAsksForAReset() throws {
        let rig = try KeyboardRig()
        try rig.controller.sendCtrlAltDel()
        #expect(rig.write(Keyboard.command, Keyboard.pulseReset) == .reset)
    }

    @Test func queuedKeysSurviveASnapshot() throws {
        let original = try KeyboardRig()
        try original.controller.sendCtrlAltDel()
        #expect(original.readData() == 0x14)
        let saved = original.controller.state
        #expect(saved.outputBuffer == 0x11 && saved.keyboardQueue == [0xe0, 0x71])
        let decoded = try JSONDecoder().decode(I8042Controller.State.self, from: JSONEncoder().encode(saved))
        #expect(decoded == saved)
        let restored = try KeyboardRig(commandByte: nil)
        try restored.controller.restore(decoded)
        #expect(restored.irq1.isHigh)
        #expect(restored.drain() == [0x11, 0xe0, 0x71])
        #expect(original.drain() == [0x11, 0xe0, 0x71])
    }

    @Test func aStateSavedBeforeTheKeyboardQueueExistedStillDecodes() throws {
        // The JSON of an I8042Controller.State from before `keyboardQueue`.
        let old = """
            {"ram":[\(([UInt8(0x45)] + [UInt8](repeating: 0, count: 31)).map(String.init).joined(separator: ","))],
            "outputBuffer":85,"outputFromAux":false,"lastWriteWasCommand":true,"outputPort":207}
            """
        let state = try JSONDecoder().decode(I8042Controller.State.self, from: Data(old.utf8))
        #expect(state.keyboardQueue.isEmpty && state.outputBuffer == 0x55 && state.pendingCommand == nil)
        let rig = try KeyboardRig(commandByte: nil)
        try rig.controller.restore(state)
        #expect(rig.drain() == [0x55])
    }

    @Test func anOverlongKeyboardQueueIsRefused() throws {
        var state = I8042Controller().state
        state.keyboardQueue = [UInt8](repeating: 0x14, count: 17)
        let controller = I8042Controller()
        let before = controller.state
        #expect(
            throws: DeviceStateError(device: "I8042Controller", field: "keyboardQueue", problem: .tooLong(count: 17, maximum: 16))
        ) { try controller.restore(state) }
        #expect(controller.state == before)
    }
}
