import Devices
import FoundationEssentials
import Testing
import VMCore

/// Saved state as a snapshot carries it: encoded to JSON and decoded again.
private func throughJSON<State: Codable>(_ state: State) throws -> State {
    try JSONDecoder().decode(State.self, from: JSONEncoder().encode(state))
}

/// One guest (or console) action on a device under test.
private enum Step {
    /// A read of `size` bytes at `offset` (`port` for multi-port devices).
    case read(UInt16, size: Int = 1)
    /// A write of `value`, `size` bytes wide.
    case write(UInt16, UInt64, size: Int = 1)
    /// Console input offered to a UART.
    case input([UInt8])
    /// The host clock moves on by this many seconds.
    case advanceClock(Int64)
}

/// What one step showed the outside world.
private struct Observation: Equatable, CustomStringConvertible {
    var value: UInt64?
    var request: DeviceRequest?
    var lines: [Bool]

    var description: String { "value \(value.map { hex($0) } ?? "-") request \(String(describing: request)) lines \(lines)" }
}

/// Runs `steps` on a device reached through `bus`, noting after each step
/// what it returned and the levels of `lines`.
private func observe(
    _ steps: [Step], bus: PortIOBus, lines: [RecordingInterruptLine] = [],
    input: ([UInt8]) -> Int = { _ in 0 }, advanceClock: (Int64) -> Void = { _ in }
) -> [Observation] {
    steps.map { step in
        var observation = Observation(value: nil, request: nil, lines: [])
        switch step {
        case .read(let port, let size): observation.value = bus.read(port: port, size: size).value
        case .write(let port, let value, let size): observation.request = bus.write(port: port, size: size, value: value).request
        case .input(let bytes): observation.value = UInt64(input(bytes))
        case .advanceClock(let seconds): advanceClock(seconds)
        }
        observation.lines = lines.map(\.isHigh)
        return observation
    }
}

// MARK: - Serial16550

private enum UART {
    static let thr: UInt16 = 0, dll: UInt16 = 0, ier: UInt16 = 1, dlm: UInt16 = 1, iir: UInt16 = 2, fcr: UInt16 = 2
    static let lcr: UInt16 = 3, mcr: UInt16 = 4, lsr: UInt16 = 5, msr: UInt16 = 6, scr: UInt16 = 7
    static let ierERBFI: UInt64 = 0b0000_0001, ierETBEI: UInt64 = 0b0000_0010, ierEDSSI: UInt64 = 0b0000_1000
    static let lcrDLAB: UInt64 = 0b1000_0000, lcr8N1: UInt64 = 0b0000_0011
    static let mcrDTR: UInt64 = 0b0000_0001, mcrRTS: UInt64 = 0b0000_0010, mcrOUT2: UInt64 = 0b0000_1000
    static let mcrLOOP: UInt64 = 0b0001_0000
}

/// A UART on a bus at offset 0, with its own sink and line.
private struct SerialRig {
    let bus = PortIOBus()
    let output = SerialBufferOutput()
    let line = RecordingInterruptLine()
    let serial: Serial16550

    init() throws {
        serial = Serial16550(output: output, interrupt: line)
        try bus.register(serial, at: 0, length: Serial16550.portCount)
    }

    func run(_ steps: [Step]) -> [Observation] {
        observe(steps, bus: bus, lines: [line], input: { serial.enqueueInput($0) })
    }
}

@Suite struct Serial16550StateTests {
    /// Divisor set with DLAB still on, FIFOs on, five bytes received and two
    /// read, a byte sent (THRE latched), modem deltas pending after a trip
    /// through loopback, SCR written, and interrupts enabled through OUT2.
    private static let setUp: [Step] = [
        .write(UART.ier, UART.ierERBFI | UART.ierETBEI | UART.ierEDSSI),
        .write(UART.mcr, UART.mcrLOOP | UART.mcrRTS),
        .write(UART.mcr, UART.mcrOUT2 | UART.mcrDTR | UART.mcrRTS),
        .write(UART.fcr, 0b0000_0001),
        .input(Array("hello".utf8)), .read(UART.thr), .read(UART.thr),
        .write(UART.thr, UInt64(UInt8(ascii: "x"))),
        .write(UART.scr, 0x5a),
        .write(UART.lcr, UART.lcrDLAB | UART.lcr8N1), .write(UART.dll, 0x01), .write(UART.dlm, 0x02),
    ]

    /// Everything a driver might do next, reading back every register.
    private static let afterwards: [Step] = [
        .read(UART.dll), .read(UART.dlm), .read(UART.lcr), .write(UART.lcr, UART.lcr8N1),
        .read(UART.iir), .read(UART.lsr), .read(UART.msr), .read(UART.iir), .read(UART.msr), .read(UART.scr),
        .read(UART.thr), .read(UART.iir), .read(UART.thr), .read(UART.thr), .read(UART.thr), .read(UART.lsr),
        .read(UART.iir), .read(UART.iir), .write(UART.thr, 0x6f), .write(UART.thr, 0x6b), .read(UART.iir),
        .input(Array(repeating: 0x41, count: 70)), .read(UART.lsr), .read(UART.iir),
        .write(UART.mcr, UART.mcrLOOP), .read(UART.msr), .write(UART.thr, 0x42), .read(UART.lsr),
        .write(UART.mcr, UART.mcrOUT2), .write(UART.fcr, 0b0000_0011), .read(UART.iir), .read(UART.lsr),
        .write(UART.ier, 0), .read(UART.iir), .read(UART.ier), .read(UART.mcr), .read(4, size: 4),
    ]

    @Test func aRestoredUARTBehavesLikeTheOriginal() throws {
        let original = try SerialRig()
        _ = original.run(Self.setUp)
        #expect(original.line.isHigh, "received data is pending and enabled")
        let saved = original.serial.state
        #expect(saved.receiveFIFO == Array("llo".utf8))
        #expect(saved.divisor == 0x0201 && saved.scratch == 0x5a && saved.fifosEnabled)
        #expect(saved.transmitterEmptyInterruptPending && saved.modemStatusDeltas != 0)

        let decoded = try throughJSON(saved)
        #expect(decoded == saved)
        let restored = try SerialRig()
        try restored.serial.restore(decoded)
        #expect(restored.serial.state == saved)
        #expect(restored.line.levels == [true], "restore drives the line to the state's level")

        let outputBefore = original.output.bytes
        #expect(original.run(Self.afterwards) == restored.run(Self.afterwards))
        #expect(Array(original.output.bytes.dropFirst(outputBefore.count)) == restored.output.bytes)
        #expect(restored.output.bytes == [0x6f, 0x6b])
        #expect(original.serial.state == restored.serial.state)
    }

    @Test func restoringAQuietStateDrivesTheLineLow() throws {
        let rig = try SerialRig()
        try rig.serial.restore(Serial16550(output: DiscardingSerialOutput()).state)
        #expect(rig.line.levels == [false])
        #expect(!rig.serial.interruptAsserted)
    }

    @Test func aFullFIFOAndAnOverrunSurviveARoundTrip() throws {
        let original = try SerialRig()
        // Loopback with the FIFO full: the 65th byte is lost and reported as an overrun.
        _ = original.run([.write(UART.ier, 0b0000_0100), .write(UART.mcr, UART.mcrLOOP | UART.mcrOUT2)])
        _ = original.run((0...64).map { .write(UART.thr, UInt64($0)) })
        _ = original.run([.write(UART.mcr, UART.mcrOUT2)])
        let saved = try throughJSON(original.serial.state)
        #expect(saved.overrunError && saved.receiveFIFO == (0..<64).map { UInt8($0) })
        let restored = try SerialRig()
        try restored.serial.restore(saved)
        let steps: [Step] = [.read(UART.iir), .read(UART.lsr), .read(UART.iir)] + (0..<65).map { _ in .read(UART.thr) }
        #expect(original.run(steps) == restored.run(steps))
    }

    private static let valid = Serial16550(output: DiscardingSerialOutput()).state

    @Test(arguments: [
        (
            {
                var s = valid; s.interruptEnable = 0x1f; return s
            }(),
            DeviceStateError(device: "Serial16550", field: "interruptEnable", problem: .reservedBitsSet(value: 0x1f, reserved: 0xf0))
        ),
        (
            {
                var s = valid; s.modemControl = 0x20; return s
            }(),
            DeviceStateError(device: "Serial16550", field: "modemControl", problem: .reservedBitsSet(value: 0x20, reserved: 0xe0))
        ),
        (
            {
                var s = valid; s.modemStatusDeltas = 0x80; return s
            }(),
            DeviceStateError(
                device: "Serial16550", field: "modemStatusDeltas", problem: .reservedBitsSet(value: 0x80, reserved: 0xf0))
        ),
        (
            {
                var s = valid; s.receiveFIFO = Array(repeating: 0, count: 65); return s
            }(),
            DeviceStateError(device: "Serial16550", field: "receiveFIFO", problem: .tooLong(count: 65, maximum: 64))
        ),
    ])
    func badStatesAreRefusedAndChangeNothing(state: Serial16550.State, expected: DeviceStateError) throws {
        let rig = try SerialRig()
        _ = rig.run(Self.setUp)
        let before = rig.serial.state
        #expect(throws: expected) { try rig.serial.restore(state) }
        #expect(rig.serial.state == before)
        #expect(rig.line.levels == [true], "a refused restore does not touch the line")
    }

    @Test func errorsSayWhatWasExpected() {
        let error = DeviceStateError(device: "Serial16550", field: "receiveFIFO", problem: .tooLong(count: 65, maximum: 64))
        #expect(error.description == "cannot restore Serial16550 state: receiveFIFO holds 65 elements, at most 64 allowed")
        let bits = DeviceStateError(
            device: "Serial16550", field: "interruptEnable", problem: .reservedBitsSet(value: 0x1f, reserved: 0xf0))
        #expect(bits.description == "cannot restore Serial16550 state: interruptEnable is 0x1f, which sets reserved bits 0x10")
    }
}

// MARK: - I8042Controller

private enum KBC {
    static let data: UInt16 = 0x60, command: UInt16 = 0x64
    static let ctrKBDINT: UInt64 = 0b0000_0001, ctrAUXINT: UInt64 = 0b0000_0010, ctrSYSFLAG: UInt64 = 0b0000_0100
    static let writeCTR: UInt64 = 0x60, readCTR: UInt64 = 0x20, writeRAM5: UInt64 = 0x65, readRAM5: UInt64 = 0x25
    static let selfTest: UInt64 = 0xaa, readOutputPort: UInt64 = 0xd0, writeOutputPort: UInt64 = 0xd1
    static let writeKbdBuffer: UInt64 = 0xd2, auxLoop: UInt64 = 0xd3, auxSend: UInt64 = 0xd4, pulseReset: UInt64 = 0xfe
}

/// A controller at 0x60 and 0x64 with both lines recorded.
private struct I8042Rig {
    let bus = PortIOBus()
    let irq1 = RecordingInterruptLine()
    let irq12 = RecordingInterruptLine()
    let controller: I8042Controller

    init() throws {
        controller = I8042Controller(keyboardInterrupt: irq1, auxInterrupt: irq12)
        try bus.register(controller.dataPort, at: KBC.data, length: I8042Controller.Port.portCount)
        try bus.register(controller.statusCommandPort, at: KBC.command, length: I8042Controller.Port.portCount)
    }

    func run(_ steps: [Step]) -> [Observation] { observe(steps, bus: bus, lines: [irq1, irq12]) }
}

@Suite struct I8042StateTests {
    /// Keyboard and aux interrupts enabled, a RAM byte written, a reply
    /// waiting in the output buffer (IRQ1 high), and 0xd1 (write output
    /// port) waiting for its parameter.
    private static let setUp: [Step] = [
        .write(KBC.command, KBC.writeCTR), .write(KBC.data, KBC.ctrKBDINT | KBC.ctrAUXINT | KBC.ctrSYSFLAG),
        .write(KBC.command, KBC.writeRAM5), .write(KBC.data, 0x99),
        .write(KBC.command, KBC.writeKbdBuffer), .write(KBC.data, 0xab),
        .write(KBC.command, KBC.writeOutputPort),
    ]

    private static let afterwards: [Step] = [
        .read(KBC.command), .write(KBC.data, 0x03), .read(KBC.command), .read(KBC.data), .read(KBC.data),
        .write(KBC.command, KBC.readOutputPort), .read(KBC.command), .read(KBC.data),
        .write(KBC.command, KBC.readRAM5), .read(KBC.data), .write(KBC.command, KBC.readCTR), .read(KBC.data),
        .write(KBC.command, KBC.auxLoop), .write(KBC.data, 0x77), .read(KBC.command), .read(KBC.data, size: 2),
        .write(KBC.command, KBC.selfTest), .write(KBC.command, KBC.auxSend), .write(KBC.data, 0xff), .read(KBC.command),
        .read(KBC.data), .write(KBC.command, KBC.writeOutputPort), .write(KBC.data, 0x00), .read(KBC.command),
        .write(KBC.command, KBC.pulseReset),
    ]

    @Test func aRestoredControllerBehavesLikeTheOriginal() throws {
        let original = try I8042Rig()
        _ = original.run(Self.setUp)
        let saved = original.controller.state
        #expect(saved.pendingCommand == 0xd1 && saved.outputBuffer == 0xab && !saved.outputFromAux)
        #expect(saved.ram[5] == 0x99 && saved.lastWriteWasCommand)

        let decoded = try throughJSON(saved)
        #expect(decoded == saved)
        let restored = try I8042Rig()
        try restored.controller.restore(decoded)
        #expect(restored.controller.state == saved)
        #expect(restored.irq1.levels == [true] && restored.irq12.levels == [false])

        let seen = original.run(Self.afterwards)
        #expect(seen == restored.run(Self.afterwards))
        #expect(seen.compactMap(\.request) == [.reset, .reset], "writing reset low, then pulsing it")
        #expect(original.controller.state == restored.controller.state)
    }

    @Test func anAuxByteRestoresIRQ12() throws {
        let original = try I8042Rig()
        _ = original.run([
            .write(KBC.command, KBC.writeCTR), .write(KBC.data, KBC.ctrAUXINT), .write(KBC.command, KBC.auxLoop),
            .write(KBC.data, 0x5a),
        ])
        let restored = try I8042Rig()
        try restored.controller.restore(throughJSON(original.controller.state))
        #expect(restored.irq1.levels == [false] && restored.irq12.levels == [true])
        let steps: [Step] = [.read(KBC.command), .read(KBC.data), .read(KBC.command)]
        #expect(original.run(steps) == restored.run(steps))
    }

    private static let valid = I8042Controller().state

    @Test(arguments: [
        (
            {
                var s = valid; s.ram.removeLast(); return s
            }(),
            DeviceStateError(device: "I8042Controller", field: "ram", problem: .wrongLength(count: 31, expected: 32))
        ),
        (
            {
                var s = valid; s.pendingCommand = 0x20; return s
            }(),
            DeviceStateError(
                device: "I8042Controller", field: "pendingCommand",
                problem: .unknownValue(value: 0x20, expected: "a command that takes a parameter (0x60-0x7f, 0xd1-0xd4) or null"))
        ),
        (
            {
                var s = valid; s.outputPort = 0xce; return s
            }(),
            DeviceStateError(device: "I8042Controller", field: "outputPort", problem: .requiredBitsClear(value: 0xce, required: 0x01))
        ),
    ])
    func badStatesAreRefusedAndChangeNothing(state: I8042Controller.State, expected: DeviceStateError) throws {
        let rig = try I8042Rig()
        _ = rig.run(Self.setUp)
        let before = rig.controller.state
        #expect(throws: expected) { try rig.controller.restore(state) }
        #expect(rig.controller.state == before)
    }

    @Test func everyCommandThatTakesAParameterRestores() throws {
        for command in [0x60...0x7f, 0xd1...0xd4].joined() {
            var state = Self.valid
            state.pendingCommand = UInt8(command)
            let controller = I8042Controller()
            try controller.restore(state)
            #expect(controller.state.pendingCommand == UInt8(command))
        }
    }
}

// MARK: - CMOSRTC

private enum RTC {
    static let index: UInt16 = 0x70, data: UInt16 = 0x71
    static let seconds: UInt64 = 0x00, secondsAlarm: UInt64 = 0x01, minutes: UInt64 = 0x02, hours: UInt64 = 0x04
    static let dayOfWeek: UInt64 = 0x06, dayOfMonth: UInt64 = 0x07, month: UInt64 = 0x08, year: UInt64 = 0x09
    static let statusA: UInt64 = 0x0a, statusB: UInt64 = 0x0b, century: UInt64 = 0x32
    static let bSET: UInt64 = 0b1000_0000, bDM: UInt64 = 0b0000_0100, b24: UInt64 = 0b0000_0010
    static let nmiDisable: UInt64 = 0b1000_0000
}

/// A clock the test can move.
private final class TestClock {
    var seconds: Int64
    init(_ seconds: Int64) { self.seconds = seconds }
    var now: RTCDateTime { RTCDateTime(secondsSince1970: seconds) }
}

/// Friday 2025-03-07 14:05:09 UTC.
private let friday: Int64 = 1_741_356_309

/// An RTC at 0x70 whose clock the test moves.
private struct RTCRig {
    let bus = PortIOBus()
    let clock: TestClock
    let rtc: CMOSRTC

    init(at seconds: Int64 = friday, allowsGuestClockWrites: Bool = true) throws {
        let clock = TestClock(seconds)
        self.clock = clock
        rtc = CMOSRTC(memorySize: 256 << 20, allowsGuestClockWrites: allowsGuestClockWrites) { clock.now }
        try bus.register(rtc, at: RTC.index, length: CMOSRTC.portCount)
    }

    func run(_ steps: [Step]) -> [Observation] {
        observe(steps, bus: bus, advanceClock: { clock.seconds += $0 })
    }

    func read(_ index: UInt64) -> UInt8 {
        UInt8(truncatingIfNeeded: run([.write(RTC.index, index), .read(RTC.data)])[1].value ?? 0)
    }
}

/// Linux's mc146818_set_time, in BCD: SET, the fields, then SET cleared.
private func setTime(_ fields: [(UInt64, UInt64)], statusB: UInt64 = RTC.b24) -> [Step] {
    var steps: [Step] = [.write(RTC.index, RTC.statusB), .write(RTC.data, statusB | RTC.bSET)]
    for (index, value) in fields { steps += [.write(RTC.index, index), .write(RTC.data, value)] }
    return steps + [.write(RTC.index, RTC.statusB), .write(RTC.data, statusB)]
}

@Suite struct CMOSRTCStateTests {
    /// The guest sets the clock to 2031-12-31 23:59:50, stores an alarm and
    /// a RAM byte, and leaves the index at 0x0e with NMIs disabled.
    private static let setUp: [Step] =
        setTime([
            (RTC.seconds, 0x50), (RTC.minutes, 0x59), (RTC.hours, 0x23), (RTC.dayOfMonth, 0x31), (RTC.month, 0x12),
            (RTC.year, 0x31),
        ]) + [
            .write(RTC.index, RTC.secondsAlarm), .write(RTC.data, 0x30),
            .write(RTC.index, 0x40), .write(RTC.data, 0x77),
            .write(RTC.index, RTC.nmiDisable | 0x0e), .write(RTC.data, 0x5a),
        ]

    private static let readTime: [Step] = [
        RTC.seconds, RTC.minutes, RTC.hours, RTC.dayOfWeek, RTC.dayOfMonth, RTC.month, RTC.year, RTC.century,
    ].flatMap { [.write(RTC.index, $0), .read(RTC.data)] }

    private static let afterwards: [Step] =
        [.read(RTC.data), .read(RTC.index)] + readTime + [.advanceClock(11)] + readTime
        + [.write(RTC.index, RTC.secondsAlarm), .read(RTC.data), .write(RTC.index, 0x40), .read(RTC.data)]
        + [.write(RTC.index, RTC.statusB), .write(RTC.data, RTC.b24 | RTC.bDM)] + readTime
        + setTime([(RTC.century, 19), (RTC.year, 99)], statusB: RTC.b24 | RTC.bDM) + readTime

    @Test func aRestoredRTCKeepsTheGuestsClockRunning() throws {
        let original = try RTCRig()
        _ = original.run(Self.setUp)
        #expect(original.read(RTC.year) == 0x31 && original.read(RTC.century) == 0x20)
        _ = original.run([.write(RTC.index, RTC.nmiDisable | 0x0e)])
        let saved = original.rtc.state
        #expect(saved.index == 0x0e && saved.nmiDisabled && saved.ram[0x0e] == 0x5a && saved.ram[0x01] == 0x30)
        #expect(saved.clockOffset == 1_956_527_990 - friday, "2031-12-31 23:59:50 UTC")

        // Restored on a host whose clock reads the same, so the two agree to the second.
        let decoded = try throughJSON(saved)
        #expect(decoded == saved)
        let restored = try RTCRig()
        try restored.rtc.restore(decoded)
        #expect(restored.rtc.state == saved)

        let seen = original.run(Self.afterwards)
        #expect(seen == restored.run(Self.afterwards))
        #expect(original.rtc.state == restored.rtc.state)
        // 11 s later the guest's year rolled over: 2032-01-01 00:00:01, a Thursday.
        #expect(restored.read(RTC.year) == 99 && restored.read(RTC.century) == 19)
    }

    @Test func theOffsetFollowsTheRestoringHostsClock() throws {
        let original = try RTCRig()
        _ = original.run(setTime([(RTC.year, 0x31)]))
        // A host an hour later: the guest's clock is an hour later too, still six years ahead.
        let restored = try RTCRig(at: friday + 3600, allowsGuestClockWrites: false)
        try restored.rtc.restore(original.rtc.state)
        #expect(restored.read(RTC.hours) == 0x15 && restored.read(RTC.year) == 0x31)
        // This RTC does not let the guest set the clock, but keeps the offset it was given.
        _ = restored.run(setTime([(RTC.year, 0x40)]))
        #expect(restored.read(RTC.year) == 0x31)
    }

    @Test func settingTheDateInLinuxsOrderNeverPassesThroughAnInvalidDate() throws {
        let rig = try RTCRig()
        _ = rig.run(setTime([(RTC.month, 0x01), (RTC.dayOfMonth, 0x31)]))
        #expect(rig.read(RTC.dayOfMonth) == 0x31 && rig.read(RTC.month) == 0x01)
        // mc146818_set_time writes the year, the month, then the day: "February 31" on the way.
        _ = rig.run(setTime([(RTC.year, 0x28), (RTC.month, 0x02), (RTC.dayOfMonth, 0x29)]))
        #expect(rig.read(RTC.dayOfMonth) == 0x29 && rig.read(RTC.month) == 0x02 && rig.read(RTC.year) == 0x28)
        #expect(rig.read(RTC.dayOfWeek) == 0x03, "2028-02-29 is a Tuesday")
    }

    @Test func aSnapshotTakenWhileTheGuestHoldsSETFinishesTheSetting() throws {
        let original = try RTCRig()
        let begin = [.write(RTC.index, RTC.statusB), .write(RTC.data, RTC.b24 | RTC.bSET)] as [Step]
        _ = original.run(begin + [.write(RTC.index, RTC.year), .write(RTC.data, 0x28), .write(RTC.index, RTC.month)])
        _ = original.run([.write(RTC.data, 0x02)])
        let saved = try throughJSON(original.rtc.state)
        #expect(saved.timeBeingSet?.month == 2 && saved.timeBeingSet?.day == 7 && saved.clockOffset == 0)

        // Restored where the guest may not set the clock, the setting in progress is still finished.
        let restored = try RTCRig(allowsGuestClockWrites: false)
        try restored.rtc.restore(saved)
        let steps: [Step] =
            [.advanceClock(100)] + Self.readTime
            + [.write(RTC.index, RTC.statusB), .write(RTC.data, RTC.b24), .advanceClock(100)] + Self.readTime
        #expect(original.run(steps) == restored.run(steps))
        #expect(restored.rtc.timeBeingSet == nil && restored.rtc.state == original.rtc.state)
        #expect(restored.read(RTC.month) == 0x02 && restored.read(RTC.year) == 0x28 && restored.read(RTC.seconds) == 0x49)
    }

    @Test func twelveHourWritesSetTheHour() throws {
        let rig = try RTCRig()
        _ = rig.run(setTime([(RTC.hours, 0x80 | 0x12)], statusB: 0))  // 12 PM
        #expect(rig.read(RTC.hours) == 0x80 | 0x12)
        _ = rig.run([.write(RTC.index, RTC.statusB), .write(RTC.data, RTC.b24)])
        #expect(rig.read(RTC.hours) == 0x12)
        _ = rig.run(setTime([(RTC.hours, 0x12)], statusB: 0))  // 12 AM
        #expect(rig.read(RTC.hours) == 0x12)
        _ = rig.run([.write(RTC.index, RTC.statusB), .write(RTC.data, RTC.b24)])
        #expect(rig.read(RTC.hours) == 0x00)
    }

    @Test func clockWritesAreSafeWithAnyClock() {
        for seconds in [Int64.min, -1, 0, Int64.max] {
            let rtc = CMOSRTC(memorySize: 0, allowsGuestClockWrites: true) { RTCDateTime(secondsSince1970: seconds) }
            #expect(sweepEveryAccess(rtc, length: CMOSRTC.portCount).isEmpty)
        }
        let extremes = RTCDateTime(year: .max, month: .min, day: .max, hour: .min, minute: .max, second: .min, weekday: 0)
        let rtc = CMOSRTC(memorySize: 0, allowsGuestClockWrites: true) { extremes }
        #expect(sweepEveryAccess(rtc, length: CMOSRTC.portCount).isEmpty)
        for offset in [Int64.min, Int64.max] {
            try? rtc.restore(CMOSRTC.State(ram: rtc.state.ram, index: 0, nmiDisabled: false, clockOffset: offset))
            for index in UInt8.min...UInt8.max { _ = rtc.readRegister(index) }
        }
    }

    private static let valid = CMOSRTC(memorySize: 0) { RTCDateTime(secondsSince1970: 0) }.state

    @Test(arguments: [
        (
            {
                var s = valid; s.ram.append(0); return s
            }(),
            DeviceStateError(device: "CMOSRTC", field: "ram", problem: .wrongLength(count: 129, expected: 128))
        ),
        (
            {
                var s = valid; s.index = 0x80; return s
            }(),
            DeviceStateError(device: "CMOSRTC", field: "index", problem: .outOfRange(value: 128, valid: 0...127))
        ),
        (
            {
                var s = valid; s.timeBeingSet = RTCDateTime(secondsSince1970: 0); return s
            }(),
            DeviceStateError(
                device: "CMOSRTC", field: "timeBeingSet",
                problem: .inconsistent(detail: "is present, but status B (ram[11]) has SET (bit 7) clear"))
        ),
    ])
    func badStatesAreRefusedAndChangeNothing(state: CMOSRTC.State, expected: DeviceStateError) throws {
        let rig = try RTCRig()
        _ = rig.run(Self.setUp)
        let before = rig.rtc.state
        #expect(throws: expected) { try rig.rtc.restore(state) }
        #expect(rig.rtc.state == before)
    }
}

@Suite struct RTCDateTimeSecondsTests {
    @Test(arguments: [0, 951_782_400, -1, friday, 4_102_444_800, -62_135_596_800, 253_402_300_799] as [Int64])
    func secondsSince1970InvertsTheConversion(seconds: Int64) {
        #expect(RTCDateTime(secondsSince1970: seconds).secondsSince1970 == seconds)
    }

    @Test func fieldsOutOfRangeCarryOver() {
        let time = RTCDateTime(year: 2025, month: 3, day: 7, hour: 14, minute: 5, second: 69, weekday: 0)
        #expect(time.secondsSince1970 == friday + 60)
        let absurd = RTCDateTime(year: .max, month: .min, day: .max, hour: .min, minute: .max, second: .min, weekday: .max)
        _ = absurd.secondsSince1970
    }
}

// MARK: - FirmwareConfig

/// fw_cfg at 0x510 with a file, as the machine configures it.
private struct FirmwareConfigRig {
    static let e820 = (0..<40).map { UInt8($0) }
    let bus = PortIOBus()
    let device: FirmwareConfig

    init() throws {
        device = FirmwareConfig(
            ramSize: 0x1_2345_6000, cpuCount: 3, commandLine: Array("console=ttyS0".utf8),
            files: [FirmwareConfig.File(name: "etc/e820", bytes: Self.e820)])
        try bus.register(device, at: 0x510, length: FirmwareConfig.portCount)
    }

    func run(_ steps: [Step]) -> [Observation] { observe(steps, bus: bus) }
}

@Suite struct FirmwareConfigStateTests {
    private static let afterwards: [Step] =
        (0..<36).map { _ in .read(0x511) } + [.read(0x511, size: 4), .read(0x510, size: 2), .read(0x511)]
        + [.write(0x510, 0x0019, size: 2), .read(0x511, size: 8), .write(0x510, 0x0015, size: 2), .read(0x511, size: 8)]

    @Test func aGuestMidReadContinuesFromTheSameByte() throws {
        let original = try FirmwareConfigRig()
        // The first file is at key 0x20; three of its bytes are read.
        let firstBytes = original.run([.write(0x510, 0x0020, size: 2), .read(0x511), .read(0x511), .read(0x511)])
        #expect(firstBytes.compactMap(\.value) == [0, 1, 2])
        let saved = original.device.state
        #expect(saved == FirmwareConfig.State(selector: 0x20, offset: 3))

        let restored = try FirmwareConfigRig()
        try restored.device.restore(throughJSON(saved))
        #expect(restored.device.state == saved)
        let seen = original.run(Self.afterwards)
        #expect(seen == restored.run(Self.afterwards))
        #expect(seen.first?.value == 3)
        #expect(original.device.state == restored.device.state)
    }

    @Test func theEndOfAnItemAndTheWriteChannelRestore() throws {
        let rig = try FirmwareConfigRig()
        try rig.device.restore(FirmwareConfig.State(selector: 0x20, offset: 40))
        #expect(rig.run([.read(0x511)]).first?.value == 0)
        try rig.device.restore(FirmwareConfig.State(selector: 0x4000, offset: 2))
        #expect(rig.run([.read(0x511, size: 2)]).first?.value == 0x554d, "\"MU\" of QEMU, through the write channel")
        try rig.device.restore(FirmwareConfig.State(selector: 0x8000, offset: 0))
        #expect(rig.run([.read(0x511)]).first?.value == 0)
    }

    @Test(arguments: [
        (
            FirmwareConfig.State(selector: 0x20, offset: 41),
            DeviceStateError(device: "FirmwareConfig", field: "offset", problem: .outOfRange(value: 41, valid: 0...40))
        ),
        (
            FirmwareConfig.State(selector: 0x0000, offset: -1),
            DeviceStateError(device: "FirmwareConfig", field: "offset", problem: .outOfRange(value: -1, valid: 0...4))
        ),
        (
            FirmwareConfig.State(selector: 0x1234, offset: 1),
            DeviceStateError(device: "FirmwareConfig", field: "offset", problem: .outOfRange(value: 1, valid: 0...0))
        ),
    ])
    func offsetsOutsideTheItemAreRefused(state: FirmwareConfig.State, expected: DeviceStateError) throws {
        let rig = try FirmwareConfigRig()
        _ = rig.run([.write(0x510, 0x0001, size: 2), .read(0x511)])
        let before = rig.device.state
        #expect(throws: expected) { try rig.device.restore(state) }
        #expect(rig.device.state == before)
        #expect(rig.run([.read(0x511, size: 3)]).first?.value == 0, "still reading FW_CFG_ID's upper bytes")
    }
}

// MARK: - The small ones

@Suite struct SmallDeviceStateTests {
    @Test func acpiSleepControlKeepsSleepTypeAndWakeStatus() throws {
        let original = ACPISleepControl()
        // S3 with SLP_EN: not carried out, so the guest "wakes" with WAK_STS set.
        #expect(original.write(offset: 0, size: 1, value: 0b0010_1100) == nil)
        let saved = try throughJSON(original.state)
        #expect(saved == ACPISleepControl.State(lastSleepType: 3, wakeStatus: true))
        let restored = ACPISleepControl()
        try restored.restore(saved)
        for device in [original, restored] {
            #expect(device.read(offset: 0, size: 2) == 0x800c)
            #expect(device.write(offset: 1, size: 1, value: 0x80) == nil)
            #expect(device.read(offset: 1, size: 1) == 0)
            #expect(device.write(offset: 0, size: 1, value: 0b0011_0100) == .powerOff)
        }
        #expect(original.state == restored.state)
    }

    @Test func acpiSleepTypeMustFitThreeBits() {
        let device = ACPISleepControl()
        #expect(
            throws: DeviceStateError(device: "ACPISleepControl", field: "lastSleepType", problem: .outOfRange(value: 8, valid: 0...7))
        ) { try device.restore(ACPISleepControl.State(lastSleepType: 8, wakeStatus: true)) }
        #expect(device.state == ACPISleepControl.State(lastSleepType: 0, wakeStatus: false))
    }

    @Test func pciConfigAddressSurvives() throws {
        let original = PCIConfigSpaceStub()
        #expect(original.write(offset: 0, size: 4, value: 0x8000_f8ac) == nil)
        let restored = PCIConfigSpaceStub()
        try restored.restore(throughJSON(original.state))
        for device in [original, restored] {
            #expect(device.read(offset: 0, size: 4) == 0x8000_f8ac)
            #expect(device.read(offset: 4, size: 4) == 0xffff_ffff)
        }
    }

    @Test func postCodeLatchSurvives() throws {
        let original = PostCodePort()
        let untouched = try throughJSON(original.state)
        #expect(untouched.lastCode == nil)
        #expect(original.write(offset: 0, size: 1, value: 0x42) == nil)
        let restored = PostCodePort()
        try restored.restore(throughJSON(original.state))
        #expect(restored.read(offset: 0, size: 2) == 0xff42)
        try restored.restore(untouched)
        #expect(restored.read(offset: 0, size: 1) == 0xff)
    }
}
