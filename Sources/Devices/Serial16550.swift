import VMCore

/// A 16550A UART, as the Linux 8250 driver and hobby kernels program it.
///
/// The UART decodes eight ports (offsets 0-7 from its base):
///
/// | offset | read               | write              | with LCR.DLAB = 1 |
/// |--------|--------------------|--------------------|-------------------|
/// | 0      | RBR receive buffer | THR transmit       | DLL divisor low   |
/// | 1      | IER                | IER                | DLM divisor high  |
/// | 2      | IIR interrupt ID   | FCR FIFO control   |                   |
/// | 3      | LCR line control   | LCR                |                   |
/// | 4      | MCR modem control  | MCR                |                   |
/// | 5      | LSR line status    | (ignored)          |                   |
/// | 6      | MSR modem status   | (ignored)          |                   |
/// | 7      | SCR scratch        | SCR                |                   |
///
/// Transmission is instant: a byte written to THR goes straight to the
/// `SerialOutput`, so THR and the transmitter are always empty. Received
/// bytes come from `enqueueInput(_:)` into a 64-byte FIFO. There is no baud
/// clock, so the divisor and line settings are stored but change nothing.
///
/// The interrupt line follows the datasheet's INTR output gated by OUT2, as
/// on a PC, where MCR.OUT2 enables the IRQ buffer between UART and PIC.
///
/// Not thread-safe: the machine serialises guest accesses and console input.
public final class Serial16550: PortIODevice {
    /// The number of ports the UART decodes.
    public static let portCount: UInt16 = 8
    /// The bytes the receive FIFO holds. A 16550A has 16; we hold 64, as
    /// vm-superio does, so that a console can hand over a pasted line at once.
    /// A guest only ever sees LSR.DR, so it cannot tell the difference.
    public static let receiveFIFOCapacity = 64

    // MARK: Register offsets

    private enum Offset {
        static let receiveTransmit: UInt16 = 0  // RBR / THR, or DLL with DLAB
        static let interruptEnable: UInt16 = 1  // IER, or DLM with DLAB
        static let interruptIdentification: UInt16 = 2  // IIR on read, FCR on write
        static let lineControl: UInt16 = 3  // LCR
        static let modemControl: UInt16 = 4  // MCR
        static let lineStatus: UInt16 = 5  // LSR
        static let modemStatus: UInt16 = 6  // MSR
        static let scratch: UInt16 = 7  // SCR
    }

    // MARK: Register bits, named as in the 16550 datasheet

    /// Interrupt Enable Register.
    private enum IER {
        /// Enable Received Data Available Interrupt.
        static let erbfi: UInt8 = 0b0000_0001
        /// Enable Transmitter Holding Register Empty Interrupt.
        static let etbei: UInt8 = 0b0000_0010
        /// Enable Receiver Line Status Interrupt.
        static let elsi: UInt8 = 0b0000_0100
        /// Enable MODEM Status Interrupt.
        static let edssi: UInt8 = 0b0000_1000
        /// Bits 4-7 are always 0 on a 16550A; Linux's probe relies on that.
        static let implemented: UInt8 = 0b0000_1111
    }

    /// Interrupt Identification Register: bit 0 is low when an interrupt is
    /// pending, bits 3-1 say which, bits 7-6 say whether the FIFOs are on.
    private enum IIR {
        static let noInterruptPending: UInt8 = 0b0000_0001
        static let receiverLineStatus: UInt8 = 0b0000_0110
        static let receivedDataAvailable: UInt8 = 0b0000_0100
        static let transmitterHoldingRegisterEmpty: UInt8 = 0b0000_0010
        static let modemStatus: UInt8 = 0b0000_0000
        static let fifosEnabled: UInt8 = 0b1100_0000
    }

    /// FIFO Control Register (write-only).
    private enum FCR {
        /// FIFO Enable. Changing it clears the FIFOs.
        static let fifoEnable: UInt8 = 0b0000_0001
        /// RCVR FIFO Reset: empties the receive FIFO; self-clearing.
        static let receiverFIFOReset: UInt8 = 0b0000_0010
    }

    /// Line Control Register.
    private enum LCR {
        /// Divisor Latch Access Bit: offsets 0 and 1 become DLL and DLM.
        static let dlab: UInt8 = 0b1000_0000
        /// 8 data bits, 1 stop bit, no parity.
        static let eightNoneOne: UInt8 = 0b0000_0011
    }

    /// MODEM Control Register.
    private enum MCR {
        static let dtr: UInt8 = 0b0000_0001
        static let rts: UInt8 = 0b0000_0010
        static let out1: UInt8 = 0b0000_0100
        /// On a PC, enables the buffer that carries INTR to the PIC.
        static let out2: UInt8 = 0b0000_1000
        /// Loopback: THR feeds RBR, and the four outputs feed the modem inputs.
        static let loop: UInt8 = 0b0001_0000
        /// Bits 5-7 are always 0 on a 16550A.
        static let implemented: UInt8 = 0b0001_1111
    }

    /// Line Status Register.
    private enum LSR {
        /// Data Ready: the receive FIFO holds at least one byte.
        static let dr: UInt8 = 0b0000_0001
        /// Overrun Error: a byte arrived with the FIFO full and was lost.
        static let oe: UInt8 = 0b0000_0010
        /// Transmitter Holding Register Empty.
        static let thre: UInt8 = 0b0010_0000
        /// Transmitter Empty: THR and the shift register are both empty.
        static let temt: UInt8 = 0b0100_0000
    }

    /// MODEM Status Register: deltas in the low nibble, inputs in the high.
    private enum MSR {
        static let dcts: UInt8 = 0b0000_0001
        static let ddsr: UInt8 = 0b0000_0010
        /// Trailing Edge Ring Indicator: RI went from on to off.
        static let teri: UInt8 = 0b0000_0100
        static let ddcd: UInt8 = 0b0000_1000
        static let cts: UInt8 = 0b0001_0000
        static let dsr: UInt8 = 0b0010_0000
        static let ri: UInt8 = 0b0100_0000
        static let dcd: UInt8 = 0b1000_0000
        /// The four delta bits, which reading MSR clears.
        static let deltas: UInt8 = dcts | ddsr | teri | ddcd
    }

    // MARK: State

    private let output: any SerialOutput
    private let interrupt: (any InterruptLine)?

    /// The divisor latch (DLM:DLL). 12 is 9600 baud from the PC's 1.8432 MHz
    /// clock, what a PC BIOS leaves behind; we have no BIOS, so we start there.
    public private(set) var divisor: UInt16 = 12
    /// LCR. 8N1, again what firmware would have set before the guest starts.
    public private(set) var lineControl: UInt8 = LCR.eightNoneOne
    /// IER, bits 0-3.
    public private(set) var interruptEnable: UInt8 = 0
    /// MCR, bits 0-4. Zero at reset, as in the datasheet: the guest sets OUT2
    /// when it wants interrupts.
    public private(set) var modemControl: UInt8 = 0
    /// SCR: a byte the guest can store and read back, nothing more.
    public private(set) var scratch: UInt8 = 0
    /// Whether the guest enabled the FIFOs (FCR bit 0), which IIR bits 7-6 report.
    public private(set) var fifosEnabled = false
    /// Whether the interrupt line is currently driven high.
    public private(set) var interruptAsserted = false

    /// LSR.OE, set when loopback overflowed the receive FIFO; reading LSR clears it.
    private var overrunError = false
    /// MSR bits 3-0: modem inputs that changed since MSR was last read.
    private var modemStatusDeltas: UInt8 = 0
    /// The THRE interrupt's own latch: set when THR becomes empty (always
    /// right after a write) or when ETBEI is turned on, cleared by reading IIR
    /// while it is the reported source or by writing THR.
    private var transmitterEmptyInterruptPending = false

    /// The receive FIFO, a ring preallocated so that receiving never allocates.
    private var receiveBuffer = [UInt8](repeating: 0, count: Serial16550.receiveFIFOCapacity)
    private var receiveHead = 0
    private var receiveCount = 0

    /// A UART in its reset state that transmits to `output` and drives
    /// `interrupt`, if given.
    public init(output: any SerialOutput, interrupt: (any InterruptLine)? = nil) {
        self.output = output
        self.interrupt = interrupt
    }

    // MARK: Saved state

    /// Everything about the UART that shapes what the guest sees next, as a
    /// plain value for snapshots, clones and migration (vm-superio's
    /// `SerialState`). The output sink and the interrupt line are the
    /// machine's wiring, not state: a restored UART keeps those it was made with.
    ///
    /// IIR, LSR and MSR are not stored: they are computed from the latches
    /// below (the FIFO, `overrunError`, `modemStatusDeltas`,
    /// `transmitterEmptyInterruptPending`) and MCR, as the device computes
    /// them on every read, so a snapshot cannot contradict itself.
    public struct State: Codable, Hashable, Sendable {
        /// The divisor latch, DLM:DLL.
        public var divisor: UInt16
        /// LCR, DLAB included.
        public var lineControl: UInt8
        /// IER; only bits 0-3 exist.
        public var interruptEnable: UInt8
        /// MCR; only bits 0-4 exist.
        public var modemControl: UInt8
        /// SCR.
        public var scratch: UInt8
        /// FCR bit 0, which IIR bits 7-6 report.
        public var fifosEnabled: Bool
        /// LSR.OE, waiting to be read.
        public var overrunError: Bool
        /// MSR bits 3-0, the modem-input changes not yet read; only bits 0-3 exist.
        public var modemStatusDeltas: UInt8
        /// The THRE interrupt's latch (see the device's comment on it).
        public var transmitterEmptyInterruptPending: Bool
        /// The receive FIFO, oldest byte first: at most `receiveFIFOCapacity` bytes.
        public var receiveFIFO: [UInt8]

        /// A state from its fields, taken as given; `restore(_:)` checks them.
        public init(
            divisor: UInt16, lineControl: UInt8, interruptEnable: UInt8, modemControl: UInt8, scratch: UInt8,
            fifosEnabled: Bool, overrunError: Bool, modemStatusDeltas: UInt8, transmitterEmptyInterruptPending: Bool,
            receiveFIFO: [UInt8]
        ) {
            self.divisor = divisor
            self.lineControl = lineControl
            self.interruptEnable = interruptEnable
            self.modemControl = modemControl
            self.scratch = scratch
            self.fifosEnabled = fifosEnabled
            self.overrunError = overrunError
            self.modemStatusDeltas = modemStatusDeltas
            self.transmitterEmptyInterruptPending = transmitterEmptyInterruptPending
            self.receiveFIFO = receiveFIFO
        }
    }

    /// The UART's current state. Taking it changes nothing (no register is read).
    public var state: State {
        State(
            divisor: divisor, lineControl: lineControl, interruptEnable: interruptEnable, modemControl: modemControl,
            scratch: scratch, fifosEnabled: fifosEnabled, overrunError: overrunError,
            modemStatusDeltas: modemStatusDeltas, transmitterEmptyInterruptPending: transmitterEmptyInterruptPending,
            receiveFIFO: (0..<receiveCount).map { receiveBuffer[(receiveHead + $0) % Self.receiveFIFOCapacity] })
    }

    /// Replaces the UART's state with `state`, then drives the interrupt line
    /// to the level the state implies, whatever it was before, so that the
    /// interrupt controller (restored separately) and the UART agree.
    ///
    /// - Throws: `DeviceStateError` naming the first field that no 16550A
    ///   could hold, without changing anything.
    public func restore(_ state: State) throws(DeviceStateError) {
        func check(_ field: String, _ value: UInt8, implemented: UInt8) throws(DeviceStateError) {
            guard value & ~implemented == 0 else {
                throw DeviceStateError(
                    device: "Serial16550", field: field,
                    problem: .reservedBitsSet(value: UInt64(value), reserved: UInt64(~implemented)))
            }
        }
        try check("interruptEnable", state.interruptEnable, implemented: IER.implemented)
        try check("modemControl", state.modemControl, implemented: MCR.implemented)
        try check("modemStatusDeltas", state.modemStatusDeltas, implemented: MSR.deltas)
        guard state.receiveFIFO.count <= Self.receiveFIFOCapacity else {
            throw DeviceStateError(
                device: "Serial16550", field: "receiveFIFO",
                problem: .tooLong(count: state.receiveFIFO.count, maximum: Self.receiveFIFOCapacity))
        }

        divisor = state.divisor
        lineControl = state.lineControl
        interruptEnable = state.interruptEnable
        modemControl = state.modemControl
        scratch = state.scratch
        fifosEnabled = state.fifosEnabled
        overrunError = state.overrunError
        modemStatusDeltas = state.modemStatusDeltas
        transmitterEmptyInterruptPending = state.transmitterEmptyInterruptPending
        // Into the preallocated ring from its start, so the buffer keeps its capacity.
        for (slot, byte) in state.receiveFIFO.enumerated() { receiveBuffer[slot] = byte }
        receiveHead = 0
        receiveCount = state.receiveFIFO.count
        // Unconditionally, unlike updateInterruptLine(): the line's level outside
        // this fresh device is unknown, so an edge-only update could leave it wrong.
        interruptAsserted = interruptLevel
        interrupt?.setLevel(interruptAsserted)
    }

    // MARK: Console side

    /// Whether received bytes are waiting for the guest to read them.
    public var hasPendingInput: Bool { receiveCount > 0 }

    /// How many more bytes `enqueueInput(_:)` would accept now. Zero in
    /// loopback mode, where the datasheet disconnects the serial input.
    public var inputSpace: Int {
        isLoopback ? 0 : Self.receiveFIFOCapacity - receiveCount
    }

    /// Receives `bytes` from the outside world into the FIFO, in order, until
    /// it is full. Returns how many were accepted; the caller keeps the rest
    /// and offers them again once the guest has read some (see `inputSpace`).
    public func enqueueInput(_ bytes: some Sequence<UInt8>) -> Int {
        guard !isLoopback else { return 0 }
        var accepted = 0
        for byte in bytes {
            guard push(byte) else { break }
            accepted += 1
        }
        if accepted > 0 { updateInterruptLine() }
        return accepted
    }

    /// LSR as the guest would read it, without clearing anything.
    public var lineStatus: UInt8 {
        // Transmission is instant, so THR and the shift register are always
        // empty; drivers that wait for THRE or TEMT never block.
        var status = LSR.thre | LSR.temt
        if receiveCount > 0 { status |= LSR.dr }
        if overrunError { status |= LSR.oe }
        return status
    }

    // MARK: PortIODevice

    /// Reads `size` bytes from consecutive registers, lowest offset first, as
    /// an ISA bus splits a wide access to an 8-bit device. Offsets past SCR
    /// read as 0xff.
    public func read(offset: UInt16, size: Int) -> UInt64 {
        var value: UInt64 = 0
        for byte in 0..<max(size, 1) where byte < 8 {
            let register = Int(offset) + byte
            let registerValue = register < Int(Self.portCount) ? readRegister(UInt16(register)) : 0xff
            value |= UInt64(registerValue) << (UInt64(byte) * 8)
        }
        return value
    }

    /// Writes `size` bytes to consecutive registers, lowest offset first.
    /// Offsets past SCR are ignored. A UART never asks anything of the machine.
    public func write(offset: UInt16, size: Int, value: UInt64) -> DeviceRequest? {
        for byte in 0..<max(size, 1) where byte < 8 {
            let register = Int(offset) + byte
            guard register < Int(Self.portCount) else { break }
            writeRegister(UInt16(register), UInt8(truncatingIfNeeded: value >> (UInt64(byte) * 8)))
        }
        return nil
    }

    // MARK: Registers

    private var isLoopback: Bool { modemControl & MCR.loop != 0 }
    private var divisorLatchSelected: Bool { lineControl & LCR.dlab != 0 }

    private func readRegister(_ offset: UInt16) -> UInt8 {
        switch offset {
        case Offset.receiveTransmit:
            if divisorLatchSelected { return UInt8(truncatingIfNeeded: divisor) }
            return readReceiveBuffer()
        case Offset.interruptEnable:
            if divisorLatchSelected { return UInt8(truncatingIfNeeded: divisor >> 8) }
            return interruptEnable
        case Offset.interruptIdentification:
            return readInterruptIdentification()
        case Offset.lineControl:
            return lineControl
        case Offset.modemControl:
            return modemControl
        case Offset.lineStatus:
            let status = lineStatus
            // OE is an event, reported once.
            if overrunError {
                overrunError = false
                updateInterruptLine()
            }
            return status
        case Offset.modemStatus:
            let status = modemInputs | modemStatusDeltas
            if modemStatusDeltas != 0 {
                modemStatusDeltas = 0
                updateInterruptLine()
            }
            return status
        default:
            return scratch
        }
    }

    private func writeRegister(_ offset: UInt16, _ value: UInt8) {
        switch offset {
        case Offset.receiveTransmit:
            if divisorLatchSelected {
                divisor = (divisor & 0xff00) | UInt16(value)
            } else {
                transmit(value)
            }
        case Offset.interruptEnable:
            if divisorLatchSelected {
                divisor = (divisor & 0x00ff) | UInt16(value) << 8
            } else {
                writeInterruptEnable(value)
            }
        case Offset.interruptIdentification:
            writeFIFOControl(value)
        case Offset.lineControl:
            lineControl = value
        case Offset.modemControl:
            writeModemControl(value)
        case Offset.lineStatus, Offset.modemStatus:
            // Status registers; the datasheet reserves writes for factory test.
            break
        default:
            scratch = value
        }
    }

    private func readReceiveBuffer() -> UInt8 {
        guard receiveCount > 0 else { return 0 }
        let byte = receiveBuffer[receiveHead]
        receiveHead = (receiveHead + 1) % Self.receiveFIFOCapacity
        receiveCount -= 1
        updateInterruptLine()
        return byte
    }

    private func transmit(_ byte: UInt8) {
        if isLoopback {
            // THR is wired to RBR. With the FIFO full the byte is lost, which
            // the receiver reports as an overrun.
            if !push(byte) { overrunError = true }
        } else {
            output.write(byte)
        }
        // The byte left THR at once, so THR is empty again and the THRE
        // interrupt the write cleared is immediately re-armed.
        transmitterEmptyInterruptPending = true
        updateInterruptLine()
    }

    private func writeInterruptEnable(_ value: UInt8) {
        let enabled = value & IER.implemented
        let turnedOn = enabled & ~interruptEnable
        interruptEnable = enabled
        if turnedOn & IER.etbei != 0 {
            // Enabling ETBEI while THR is empty raises THRE at once, even if
            // it was acknowledged before. Linux's startup test (UART_BUG_THRE)
            // and Windows both toggle IER and expect this.
            transmitterEmptyInterruptPending = true
        } else if enabled & IER.etbei == 0 {
            transmitterEmptyInterruptPending = false
        }
        updateInterruptLine()
    }

    private func writeFIFOControl(_ value: UInt8) {
        let enable = value & FCR.fifoEnable != 0
        // Turning the FIFOs on or off empties them (datasheet, FCR bit 0).
        // The datasheet ignores the reset bits while bit 0 is 0; we honour
        // them anyway, since our buffer keeps up to 64 bytes even when the
        // FIFOs are "off", where a real chip would hold only one.
        if enable != fifosEnabled || value & FCR.receiverFIFOReset != 0 {
            receiveHead = 0
            receiveCount = 0
        }
        fifosEnabled = enable
        updateInterruptLine()
    }

    private func writeModemControl(_ value: UInt8) {
        let inputsBefore = modemInputs
        modemControl = value & MCR.implemented
        let inputsAfter = modemInputs
        let changed = inputsBefore ^ inputsAfter
        if changed & MSR.cts != 0 { modemStatusDeltas |= MSR.dcts }
        if changed & MSR.dsr != 0 { modemStatusDeltas |= MSR.ddsr }
        if changed & MSR.dcd != 0 { modemStatusDeltas |= MSR.ddcd }
        if inputsBefore & MSR.ri != 0, inputsAfter & MSR.ri == 0 { modemStatusDeltas |= MSR.teri }
        updateInterruptLine()
    }

    /// The modem inputs (MSR bits 7-4) the UART sees.
    private var modemInputs: UInt8 {
        guard isLoopback else {
            // A permanently attached, ready terminal: drivers that wait for
            // carrier or clear-to-send proceed. RI stays off.
            return MSR.cts | MSR.dsr | MSR.dcd
        }
        // In loopback the outputs feed the inputs: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
        var inputs: UInt8 = 0
        if modemControl & MCR.rts != 0 { inputs |= MSR.cts }
        if modemControl & MCR.dtr != 0 { inputs |= MSR.dsr }
        if modemControl & MCR.out1 != 0 { inputs |= MSR.ri }
        if modemControl & MCR.out2 != 0 { inputs |= MSR.dcd }
        return inputs
    }

    // MARK: Interrupts

    /// IIR bits 3-0: the highest-priority interrupt that is both pending and enabled.
    private var pendingInterrupt: UInt8 {
        if interruptEnable & IER.elsi != 0, overrunError {
            return IIR.receiverLineStatus
        }
        if interruptEnable & IER.erbfi != 0, receiveCount > 0 {
            return IIR.receivedDataAvailable
        }
        if interruptEnable & IER.etbei != 0, transmitterEmptyInterruptPending {
            return IIR.transmitterHoldingRegisterEmpty
        }
        if interruptEnable & IER.edssi != 0, modemStatusDeltas != 0 {
            return IIR.modemStatus
        }
        return IIR.noInterruptPending
    }

    private func readInterruptIdentification() -> UInt8 {
        let pending = pendingInterrupt
        if pending == IIR.transmitterHoldingRegisterEmpty {
            // Reading IIR acknowledges THRE, the one source with no register
            // of its own to read.
            transmitterEmptyInterruptPending = false
            updateInterruptLine()
        }
        return pending | (fifosEnabled ? IIR.fifosEnabled : 0)
    }

    /// The level INTR, gated by OUT2, should have now.
    private var interruptLevel: Bool {
        // OUT2 gates INTR on a PC. In loopback the datasheet forces the output
        // pins inactive, so OUT2 no longer reaches the gate and the IRQ stays low.
        pendingInterrupt != IIR.noInterruptPending
            && modemControl & MCR.out2 != 0
            && !isLoopback
    }

    /// Drives the line to match IIR, changing it only on a transition so that
    /// the machine sees one call per edge.
    private func updateInterruptLine() {
        let level = interruptLevel
        guard level != interruptAsserted else { return }
        interruptAsserted = level
        interrupt?.setLevel(level)
    }

    /// Appends a received byte, or returns false if the FIFO is full.
    private func push(_ byte: UInt8) -> Bool {
        guard receiveCount < Self.receiveFIFOCapacity else { return false }
        receiveBuffer[(receiveHead + receiveCount) % Self.receiveFIFOCapacity] = byte
        receiveCount += 1
        return true
    }
}
