import Devices
import Testing
import VMCore

/// Status and command-byte bits and command codes from the IBM PC AT
/// technical reference (and Linux's i8042.h), written out independently of
/// the implementation.
private enum KBC {
    static let statusOBF: UInt8 = 0b0000_0001
    static let statusIBF: UInt8 = 0b0000_0010
    static let statusSYS: UInt8 = 0b0000_0100
    static let statusA2: UInt8 = 0b0000_1000
    static let statusUnlocked: UInt8 = 0b0001_0000
    static let statusAuxData: UInt8 = 0b0010_0000

    static let ctrKBDINT: UInt8 = 0b0000_0001
    static let ctrAUXINT: UInt8 = 0b0000_0010
    static let ctrSYSFLAG: UInt8 = 0b0000_0100
    static let ctrKBDDIS: UInt8 = 0b0001_0000
    static let ctrAUXDIS: UInt8 = 0b0010_0000
    static let ctrXLATE: UInt8 = 0b0100_0000

    static let readCTR: UInt8 = 0x20
    static let writeCTR: UInt8 = 0x60
    static let auxDisable: UInt8 = 0xa7
    static let auxEnable: UInt8 = 0xa8
    static let auxTest: UInt8 = 0xa9
    static let selfTest: UInt8 = 0xaa
    static let kbdTest: UInt8 = 0xab
    static let kbdDisable: UInt8 = 0xad
    static let kbdEnable: UInt8 = 0xae
    static let readInputPort: UInt8 = 0xc0
    static let readOutputPort: UInt8 = 0xd0
    static let writeOutputPort: UInt8 = 0xd1
    static let writeKbdBuffer: UInt8 = 0xd2
    static let auxLoop: UInt8 = 0xd3
    static let auxSend: UInt8 = 0xd4
    static let pulseReset: UInt8 = 0xfe
}

/// A controller registered as the VMM does, at 0x60 and 0x64 with length 1,
/// with both interrupt lines recorded.
private struct Rig {
    let bus = PortIOBus()
    let irq1 = RecordingInterruptLine()
    let irq12 = RecordingInterruptLine()
    let controller: I8042Controller

    init() throws {
        controller = I8042Controller(keyboardInterrupt: irq1, auxInterrupt: irq12)
        try bus.register(controller.dataPort, at: 0x60, length: I8042Controller.Port.portCount)
        try bus.register(controller.statusCommandPort, at: 0x64, length: I8042Controller.Port.portCount)
    }

    var status: UInt8 { UInt8(truncatingIfNeeded: bus.read(port: 0x64, size: 1).value) }
    func readData() -> UInt8 { UInt8(truncatingIfNeeded: bus.read(port: 0x60, size: 1).value) }

    @discardableResult
    func command(_ code: UInt8) -> DeviceRequest? { bus.write(port: 0x64, size: 1, value: UInt64(code)).request }

    @discardableResult
    func writeData(_ byte: UInt8) -> DeviceRequest? { bus.write(port: 0x60, size: 1, value: UInt64(byte)).request }

    /// Sends `code` and reads its one-byte reply, checking OBF on the way.
    func reply(to code: UInt8) -> UInt8? {
        #expect(command(code) == nil)
        guard status & KBC.statusOBF != 0 else { return nil }
        return readData()
    }
}

/// Linux's `i8042_command`, `i8042_flush` and the probe steps built on them
/// (drivers/input/serio/i8042.c), polling with the driver's own bound of
/// 10,000 status reads where the driver would `udelay(50)` between them.
private struct LinuxDriver {
    let rig: Rig
    static let pollLimit = 10_000

    enum Failure: Error, Equatable { case timeout, auxError, noController, unexpected(UInt8) }

    private func waitWrite() throws(Failure) {
        for _ in 0..<Self.pollLimit where rig.status & KBC.statusIBF == 0 { return }
        throw .timeout
    }

    private func waitRead() throws(Failure) {
        for _ in 0..<Self.pollLimit where rig.status & KBC.statusOBF != 0 { return }
        throw .timeout
    }

    /// `i8042_command(param, command)`, where `command` packs the parameter
    /// count in bits 15-12 and the result count in bits 11-8.
    func command(_ command: UInt16, _ parameters: [UInt8] = []) throws(Failure) -> [UInt8] {
        let code = UInt8(truncatingIfNeeded: command)
        try waitWrite()
        rig.command(code)
        for parameter in parameters.prefix(Int(command >> 12 & 0xf)) {
            try waitWrite()
            rig.writeData(parameter)
        }
        var results: [UInt8] = []
        for _ in 0..<Int(command >> 8 & 0xf) {
            try waitRead()
            if code == KBC.auxLoop && rig.status & KBC.statusAuxData == 0 { throw .auxError }
            results.append(rig.readData())
        }
        return results
    }

    /// `i8042_flush`: drains at most 16 bytes; a controller whose OBF never clears is not there.
    func flush() throws(Failure) {
        var count = 0
        while rig.status & KBC.statusOBF != 0 {
            guard count < 16 else { throw .noController }
            count += 1
            _ = rig.readData()
        }
    }
}

@Suite struct I8042ControllerTests {
    @Test func idleStatusHasNoDataAndTheSystemFlag() throws {
        let rig = try Rig()
        let status = rig.status
        #expect(status & KBC.statusOBF == 0)
        #expect(status & KBC.statusIBF == 0)
        #expect(status & KBC.statusSYS != 0)
        #expect(status & KBC.statusUnlocked != 0)
        #expect(status & KBC.statusAuxData == 0)
    }

    @Test func dataReadWithNothingPendingIsZeroAndLeavesOBFClear() throws {
        let rig = try Rig()
        #expect(rig.readData() == 0)
        #expect(rig.readData() == 0)
        #expect(rig.status & KBC.statusOBF == 0)
    }

    @Test func readCommandByteSetsOBFUntilTheDataIsRead() throws {
        let rig = try Rig()
        #expect(rig.command(KBC.readCTR) == nil)
        #expect(rig.status & KBC.statusOBF != 0)
        // Translation on, both interfaces and their interrupts off, POST passed.
        #expect(rig.readData() == KBC.ctrXLATE | KBC.ctrAUXDIS | KBC.ctrKBDDIS | KBC.ctrSYSFLAG)
        #expect(rig.status & KBC.statusOBF == 0)
        #expect(rig.readData() == 0)
    }

    @Test func writeCommandByteIsReadBack() throws {
        let rig = try Rig()
        rig.command(KBC.writeCTR)
        #expect(rig.status & KBC.statusOBF == 0)
        rig.writeData(0x47)
        #expect(rig.controller.commandByte == 0x47)
        #expect(rig.reply(to: KBC.readCTR) == 0x47)
    }

    @Test func systemFlagFollowsTheCommandByte() throws {
        let rig = try Rig()
        rig.command(KBC.writeCTR)
        rig.writeData(KBC.ctrXLATE)
        #expect(rig.status & KBC.statusSYS == 0)
        // A passed self-test sets it again, as the chip does.
        #expect(rig.reply(to: KBC.selfTest) == 0x55)
        #expect(rig.status & KBC.statusSYS != 0)
        #expect(rig.controller.commandByte == KBC.ctrXLATE | KBC.ctrSYSFLAG)
    }

    @Test func statusA2RecordsWhichPortWasWrittenLast() throws {
        let rig = try Rig()
        rig.command(KBC.writeCTR)
        #expect(rig.status & KBC.statusA2 != 0)
        rig.writeData(KBC.ctrSYSFLAG)
        #expect(rig.status & KBC.statusA2 == 0)
    }

    @Test func selfTestAndInterfaceTestsPass() throws {
        let rig = try Rig()
        #expect(rig.reply(to: KBC.selfTest) == 0x55)
        #expect(rig.reply(to: KBC.kbdTest) == 0x00)
        #expect(rig.reply(to: KBC.auxTest) == 0x00)
        #expect(rig.reply(to: KBC.readInputPort) == 0b1000_0000)
    }

    @Test func enableAndDisableCommandsFlipTheCommandByteBits() throws {
        let rig = try Rig()
        rig.command(KBC.kbdEnable)
        #expect(rig.controller.commandByte & KBC.ctrKBDDIS == 0)
        rig.command(KBC.kbdDisable)
        #expect(rig.controller.commandByte & KBC.ctrKBDDIS != 0)
        rig.command(KBC.auxEnable)
        #expect(rig.reply(to: KBC.readCTR).map { $0 & KBC.ctrAUXDIS } == 0)
        rig.command(KBC.auxDisable)
        #expect(rig.reply(to: KBC.readCTR).map { $0 & KBC.ctrAUXDIS } == KBC.ctrAUXDIS)
        // None of them replies.
        #expect(rig.status & KBC.statusOBF == 0)
    }

    @Test func pulsingTheResetLineAsksForAReset() throws {
        let rig = try Rig()
        #expect(rig.command(KBC.pulseReset) == .reset)
        // 0xf0-0xff pulse the lines whose bit is 0; bit 0 is reset.
        #expect(rig.command(0xf0) == .reset)
        #expect(rig.command(0xfc) == .reset)
        #expect(rig.command(0xff) == nil)
        #expect(rig.command(0xf1) == nil)
    }

    @Test func linuxRebootEqualsKSequenceResets() throws {
        // arch/x86/kernel/reboot.c, BOOT_KBD: kb_wait() then outb(0xfe, 0x64).
        let rig = try Rig()
        var waited = 0
        while rig.status & KBC.statusIBF != 0 && waited < 0x10000 { waited += 1 }
        #expect(waited == 0)
        #expect(rig.bus.write(port: 0x64, size: 1, value: 0xfe) == BusWriteResult(request: .reset, unclaimed: .no))
    }

    @Test func writeOutputPortWithResetLowResets() throws {
        let rig = try Rig()
        #expect(rig.reply(to: KBC.readOutputPort) == 0b1100_1111)
        rig.command(KBC.writeOutputPort)
        #expect(rig.writeData(0b1100_1101) == nil)  // A20 off, reset released
        #expect(rig.reply(to: KBC.readOutputPort) == 0b1100_1101)
        rig.command(KBC.writeOutputPort)
        #expect(rig.writeData(0b1100_1110) == .reset)
        // The reset is a pulse: the port does not stay in reset.
        #expect(rig.controller.outputPort == 0b1100_1111)
    }

    @Test func bytesForTheAbsentDevicesAreDroppedWithoutAReply() throws {
        let rig = try Rig()
        #expect(rig.writeData(0xf2) == nil)  // keyboard "get ID"
        rig.command(KBC.auxSend)
        #expect(rig.writeData(0xff) == nil)  // mouse "reset"
        #expect(rig.status & KBC.statusOBF == 0)
        #expect(rig.controller.droppedDeviceBytes == 2)
        // The parameter was consumed: the next data byte goes to the keyboard again.
        rig.command(KBC.writeCTR)
        rig.writeData(0x00)
        #expect(rig.controller.commandByte == 0)
    }

    @Test func aNewCommandAbandonsAPendingParameter() throws {
        let rig = try Rig()
        rig.command(KBC.writeOutputPort)
        rig.command(KBC.kbdEnable)
        #expect(rig.writeData(0x00) == nil)  // to the keyboard, not the output port
        #expect(rig.controller.outputPort == 0b1100_1111)
    }

    @Test func outputBufferWritesLoopBackWithTheRightSource() throws {
        let rig = try Rig()
        rig.command(KBC.auxLoop)
        rig.writeData(0x5a)
        #expect(rig.status & (KBC.statusOBF | KBC.statusAuxData) == KBC.statusOBF | KBC.statusAuxData)
        #expect(rig.readData() == 0x5a)
        #expect(rig.status & (KBC.statusOBF | KBC.statusAuxData) == 0)
        rig.command(KBC.writeKbdBuffer)
        rig.writeData(0x1c)
        #expect(rig.status & (KBC.statusOBF | KBC.statusAuxData) == KBC.statusOBF)
        #expect(rig.readData() == 0x1c)
    }

    @Test func internalRAMBeyondTheCommandByteIsReadWrite() throws {
        let rig = try Rig()
        rig.command(0x7f)
        rig.writeData(0x99)
        #expect(rig.reply(to: 0x3f) == 0x99)
        #expect(rig.reply(to: 0x21) == 0x00)
    }

    @Test func keyboardInterruptFollowsOBFWhenEnabled() throws {
        let rig = try Rig()
        // Interrupts are off after POST: a reply raises nothing.
        _ = rig.reply(to: KBC.selfTest)
        #expect(rig.irq1.levels.isEmpty)
        rig.command(KBC.writeCTR)
        rig.writeData(KBC.ctrKBDINT | KBC.ctrSYSFLAG)
        #expect(rig.command(KBC.readCTR) == nil)
        #expect(rig.irq1.levels == [true])
        #expect(rig.controller.keyboardInterruptAsserted)
        _ = rig.readData()
        #expect(rig.irq1.levels == [true, false])
        #expect(rig.irq12.levels.isEmpty)
    }

    @Test func enablingTheInterruptWithDataWaitingRaisesIt() throws {
        let rig = try Rig()
        rig.command(KBC.readCTR)
        #expect(rig.irq1.levels.isEmpty)
        // 0x60 replaces nothing: the write goes to RAM, not the output buffer.
        rig.command(KBC.writeCTR)
        rig.writeData(KBC.ctrKBDINT)
        #expect(rig.irq1.levels == [true])
        rig.command(KBC.writeCTR)
        rig.writeData(0)
        #expect(rig.irq1.levels == [true, false])
        #expect(rig.status & KBC.statusOBF != 0)
    }

    @Test func auxInterruptFollowsAuxDataWhenEnabled() throws {
        let rig = try Rig()
        rig.command(KBC.writeCTR)
        rig.writeData(KBC.ctrKBDINT | KBC.ctrAUXINT)
        rig.command(KBC.auxLoop)
        rig.writeData(0xa5)
        #expect(rig.irq12.levels == [true])
        #expect(rig.irq1.levels.isEmpty)
        #expect(rig.controller.auxInterruptAsserted)
        #expect(rig.readData() == 0xa5)
        #expect(rig.irq12.levels == [true, false])
    }

    @Test func linuxProbeSequenceCompletesWithoutTimeouts() throws {
        let rig = try Rig()
        let driver = LinuxDriver(rig: rig)
        // i8042_controller_check and i8042_controller_selftest.
        try driver.flush()
        #expect(try driver.command(0x01aa) == [0x55])
        // i8042_controller_init: two matching CTR reads, then write it back.
        let ctr = try driver.command(0x0120)
        #expect(try driver.command(0x0120) == ctr)
        let newCTR = (ctr[0] | KBC.ctrKBDDIS) & ~KBC.ctrKBDINT
        #expect(try driver.command(0x1060, [newCTR]) == [])
        try driver.flush()
        // i8042_check_aux: loopback, then the AUXDIS bit assignment test.
        #expect(try driver.command(0x11d3, [0x5a]) == [0x5a])
        #expect(try driver.command(0x00a7) == [])
        #expect(try driver.command(0x0120).map { $0 & KBC.ctrAUXDIS } == [KBC.ctrAUXDIS])
        #expect(try driver.command(0x00a8) == [])
        #expect(try driver.command(0x0120).map { $0 & KBC.ctrAUXDIS } == [0])
        // i8042_set_mux_mode: the third loop byte comes back unchanged, so no MUX.
        #expect(try driver.command(0x11d3, [0xf0]) == [0xf0])
        #expect(try driver.command(0x11d3, [0x56]) == [0x56])
        #expect(try driver.command(0x11d3, [0xa4]) == [0xa4])
        // The aux IRQ test: i8042_enable_aux_port, then a loop byte that must raise IRQ12.
        let enabled = try driver.command(0x0120)[0] & ~KBC.ctrAUXDIS | KBC.ctrAUXINT
        _ = try driver.command(0x1060, [enabled])
        _ = try driver.command(0x10d3, [0xa5])
        #expect(rig.irq12.isHigh)
        #expect(rig.readData() == 0xa5)
        #expect(!rig.irq12.isHigh)
    }

    @Test func eachAdapterReachesOnlyItsOwnRegister() {
        let controller = I8042Controller()
        let data = controller.dataPort
        let command = controller.statusCommandPort
        #expect(data.register == .data && command.register == .statusCommand)
        #expect(data.controller === controller && command.controller === controller)
        #expect(command.write(offset: 0, size: 1, value: UInt64(KBC.readCTR)) == nil)
        #expect(command.read(offset: 0, size: 1) & UInt64(KBC.statusOBF) != 0)
        // A wide read: the register in the low byte, undriven lines above it.
        #expect(data.read(offset: 0, size: 2) == 0xff74)
        #expect(command.read(offset: 0, size: 4) == 0xffff_ff1c)
        // Offsets past the register are nothing.
        #expect(data.read(offset: 1, size: 1) == 0xff)
        #expect(command.write(offset: 3, size: 1, value: 0xfe) == nil)
    }

    @Test func noAccessTrapsAndOnlyResetIsEverRequested() {
        let controller = I8042Controller(keyboardInterrupt: RecordingInterruptLine(), auxInterrupt: nil)
        let dataRequests = sweepEveryAccess(controller.dataPort, length: 1)
        let commandRequests = sweepEveryAccess(controller.statusCommandPort, length: 1)
        #expect(dataRequests.isSubset(of: [.reset]))
        #expect(commandRequests == [.reset])
        for command in UInt8.min...UInt8.max {
            for byte: UInt8 in [0x00, 0xfe, 0xff] {
                _ = controller.writeCommand(command)
                _ = controller.writeData(byte)
                _ = controller.readData()
            }
        }
    }
}
