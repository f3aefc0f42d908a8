import Devices
import Testing
import VMCore

/// Register offsets and bit values from the 16550 datasheet, written out here
/// independently of the implementation so that the tests check the datasheet.
private enum UART {
    static let rbr: UInt16 = 0, thr: UInt16 = 0, dll: UInt16 = 0
    static let ier: UInt16 = 1, dlm: UInt16 = 1
    static let iir: UInt16 = 2, fcr: UInt16 = 2
    static let lcr: UInt16 = 3
    static let mcr: UInt16 = 4
    static let lsr: UInt16 = 5
    static let msr: UInt16 = 6
    static let scr: UInt16 = 7

    static let ierERBFI: UInt8 = 0b0000_0001
    static let ierETBEI: UInt8 = 0b0000_0010
    static let ierELSI: UInt8 = 0b0000_0100
    static let ierEDSSI: UInt8 = 0b0000_1000

    static let iirNone: UInt8 = 0b0000_0001
    static let iirLineStatus: UInt8 = 0b0000_0110
    static let iirDataAvailable: UInt8 = 0b0000_0100
    static let iirTHREmpty: UInt8 = 0b0000_0010
    static let iirModemStatus: UInt8 = 0b0000_0000
    static let iirFIFOsEnabled: UInt8 = 0b1100_0000

    static let lcr8N1: UInt8 = 0b0000_0011
    static let lcrDLAB: UInt8 = 0b1000_0000

    static let mcrDTR: UInt8 = 0b0000_0001
    static let mcrRTS: UInt8 = 0b0000_0010
    static let mcrOUT1: UInt8 = 0b0000_0100
    static let mcrOUT2: UInt8 = 0b0000_1000
    static let mcrLOOP: UInt8 = 0b0001_0000

    static let lsrDR: UInt8 = 0b0000_0001
    static let lsrOE: UInt8 = 0b0000_0010
    static let lsrTHRE: UInt8 = 0b0010_0000
    static let lsrTEMT: UInt8 = 0b0100_0000

    static let msrDDSR: UInt8 = 0b0000_0010
    static let msrTERI: UInt8 = 0b0000_0100
    static let msrDDCD: UInt8 = 0b0000_1000
    static let msrCTS: UInt8 = 0b0001_0000
    static let msrDSR: UInt8 = 0b0010_0000
    static let msrRI: UInt8 = 0b0100_0000
    static let msrDCD: UInt8 = 0b1000_0000
}

/// A UART with its sink and interrupt line, driven by single-byte accesses
/// as a guest driver makes them.
private struct Rig {
    let output = SerialBufferOutput()
    let line = RecordingInterruptLine()
    let serial: Serial16550

    init() {
        serial = Serial16550(output: output, interrupt: line)
    }

    func read(_ offset: UInt16) -> UInt8 {
        UInt8(truncatingIfNeeded: serial.read(offset: offset, size: 1))
    }

    func write(_ offset: UInt16, _ value: UInt8) {
        #expect(serial.write(offset: offset, size: 1, value: UInt64(value)) == nil)
    }
}

@Suite struct Serial16550Tests {
    @Test func transmittedBytesReachTheSinkUnchanged() {
        let rig = Rig()
        let bytes: [UInt8] = [0x00, 0xff, 0x0a, 0x0d, 0x41, 0x1b, 0x80]
        for byte in bytes { rig.write(UART.thr, byte) }
        #expect(rig.output.bytes == bytes)
    }

    @Test func textOutputDecodesUTF8() {
        let rig = Rig()
        for byte in Array("OK\n".utf8) { rig.write(UART.thr, byte) }
        #expect(rig.output.text == "OK\n")
    }

    @Test func lineStatusAlwaysReportsTransmitterEmpty() {
        let rig = Rig()
        #expect(rig.read(UART.lsr) == UART.lsrTHRE | UART.lsrTEMT)
        rig.write(UART.thr, 0x41)
        #expect(rig.read(UART.lsr) == UART.lsrTHRE | UART.lsrTEMT)
    }

    @Test(arguments: [(UInt16(1), "115200"), (12, "9600")])
    func divisorLatchRoundTrips(divisor: UInt16, baud: String) {
        let rig = Rig()
        rig.write(UART.lcr, UART.lcrDLAB | UART.lcr8N1)
        rig.write(UART.dll, UInt8(divisor & 0xff))
        rig.write(UART.dlm, UInt8(divisor >> 8))
        #expect(rig.read(UART.dll) == UInt8(divisor & 0xff), "DLL at \(baud) baud")
        #expect(rig.read(UART.dlm) == UInt8(divisor >> 8), "DLM at \(baud) baud")
        rig.write(UART.lcr, UART.lcr8N1)

        #expect(rig.serial.divisor == divisor)
        #expect(rig.serial.lineControl == UART.lcr8N1)
        #expect(rig.read(UART.lcr) == UART.lcr8N1)
        // Programming the divisor transmits nothing and leaves IER alone.
        #expect(rig.output.bytes.isEmpty)
        #expect(rig.read(UART.ier) == 0)
        // With DLAB clear, offset 0 is THR again.
        rig.write(UART.thr, 0x42)
        #expect(rig.output.bytes == [0x42])
        #expect(rig.serial.divisor == divisor)
    }

    @Test func wideDivisorWriteFillsDLLThenDLM() {
        let rig = Rig()
        rig.write(UART.lcr, UART.lcrDLAB)
        _ = rig.serial.write(offset: UART.dll, size: 2, value: 0x0180)
        #expect(rig.serial.divisor == 0x0180)
        #expect(rig.serial.read(offset: UART.dll, size: 2) == 0x0180)
        #expect(rig.output.bytes.isEmpty)
    }

    @Test func receivedBytesAreReadInOrderWithDataReady() {
        let rig = Rig()
        #expect(!rig.serial.hasPendingInput)
        #expect(rig.serial.enqueueInput(Array("hi".utf8)) == 2)
        #expect(rig.serial.hasPendingInput)
        #expect(rig.read(UART.lsr) == UART.lsrDR | UART.lsrTHRE | UART.lsrTEMT)
        #expect(rig.read(UART.rbr) == UInt8(ascii: "h"))
        #expect(rig.read(UART.lsr) & UART.lsrDR != 0)
        #expect(rig.read(UART.rbr) == UInt8(ascii: "i"))
        #expect(rig.read(UART.lsr) & UART.lsrDR == 0)
        #expect(!rig.serial.hasPendingInput)
        // An empty receive buffer reads as 0.
        #expect(rig.read(UART.rbr) == 0)
    }

    @Test func receiveFIFOHoldsSixtyFourBytes() {
        let rig = Rig()
        let input = (0..<100).map { UInt8($0) }
        #expect(rig.serial.inputSpace == 64)
        #expect(rig.serial.enqueueInput(input) == 64)
        #expect(rig.serial.inputSpace == 0)
        #expect(rig.serial.enqueueInput([0xaa]) == 0)
        #expect(rig.read(UART.rbr) == 0)
        #expect(rig.serial.inputSpace == 1)
        // The ring wraps: the byte accepted now comes out after the first 64.
        #expect(rig.serial.enqueueInput(input[64...]) == 1)
        let drained = (0..<64).map { _ in rig.read(UART.rbr) }
        #expect(drained == Array(input[1...64]))
        #expect(rig.read(UART.lsr) & UART.lsrDR == 0)
    }

    @Test func fifoControlClearsTheReceiveFIFO() {
        let rig = Rig()
        #expect(rig.serial.enqueueInput([1, 2, 3]) == 3)
        // Enable FIFOs, reset RCVR and XMIT FIFOs: what Linux and most hobby kernels write.
        rig.write(UART.fcr, 0b0000_0111)
        #expect(!rig.serial.hasPendingInput)
        #expect(rig.read(UART.lsr) & UART.lsrDR == 0)
        #expect(rig.serial.fifosEnabled)

        #expect(rig.serial.enqueueInput([4, 5]) == 2)
        // RCVR FIFO reset alone, keeping the FIFOs on.
        rig.write(UART.fcr, 0b0000_0011)
        #expect(!rig.serial.hasPendingInput)

        #expect(rig.serial.enqueueInput([6]) == 1)
        // Turning the FIFOs off empties them too.
        rig.write(UART.fcr, 0b0000_0000)
        #expect(!rig.serial.hasPendingInput)
        #expect(!rig.serial.fifosEnabled)
    }

    @Test func interruptIdentificationReportsFIFOsEnabled() {
        let rig = Rig()
        #expect(rig.read(UART.iir) == UART.iirNone)
        rig.write(UART.fcr, 0b1100_0001)
        #expect(rig.read(UART.iir) == UART.iirFIFOsEnabled | UART.iirNone)
        rig.write(UART.ier, UART.ierETBEI)
        #expect(rig.read(UART.iir) == UART.iirFIFOsEnabled | UART.iirTHREmpty)
    }

    @Test func transmitterEmptyInterruptIsAcknowledgedByReadingIIR() {
        let rig = Rig()
        rig.write(UART.mcr, UART.mcrOUT2)
        #expect(rig.line.levels.isEmpty)

        rig.write(UART.ier, UART.ierETBEI)
        #expect(rig.line.levels == [true])
        #expect(rig.read(UART.iir) == UART.iirTHREmpty)
        #expect(rig.line.levels == [true, false])
        #expect(rig.read(UART.iir) == UART.iirNone)

        // Each transmitted byte empties THR again.
        rig.write(UART.thr, 0x41)
        #expect(rig.line.levels == [true, false, true])
        #expect(rig.read(UART.iir) == UART.iirTHREmpty)
        #expect(rig.line.levels == [true, false, true, false])
    }

    @Test func enablingETBEIAgainReassertsTHRE() {
        // Linux's startup test for UART_BUG_THRE: acknowledge THRE, toggle
        // IER.ETBEI off and on, and expect THRE to be pending again.
        let rig = Rig()
        rig.write(UART.ier, UART.ierETBEI)
        #expect(rig.read(UART.iir) == UART.iirTHREmpty)
        #expect(rig.read(UART.iir) == UART.iirNone)
        rig.write(UART.ier, 0)
        rig.write(UART.ier, UART.ierETBEI)
        #expect(rig.read(UART.iir) == UART.iirTHREmpty)
        // Disabling ETBEI withdraws the pending THRE.
        rig.write(UART.thr, 0x41)
        rig.write(UART.ier, 0)
        rig.write(UART.ier, UART.ierERBFI)
        #expect(rig.read(UART.iir) == UART.iirNone)
    }

    @Test func receivedDataOutranksTransmitterEmpty() {
        let rig = Rig()
        rig.write(UART.mcr, UART.mcrOUT2)
        rig.write(UART.ier, UART.ierERBFI | UART.ierETBEI)
        #expect(rig.line.isHigh)
        #expect(rig.serial.enqueueInput([0x61]) == 1)
        // Reading IIR while data is available does not acknowledge THRE.
        #expect(rig.read(UART.iir) == UART.iirDataAvailable)
        #expect(rig.read(UART.iir) == UART.iirDataAvailable)
        #expect(rig.read(UART.rbr) == 0x61)
        #expect(rig.line.isHigh)
        #expect(rig.read(UART.iir) == UART.iirTHREmpty)
        #expect(!rig.line.isHigh)
        #expect(rig.read(UART.iir) == UART.iirNone)
        // The line only ever changed on edges.
        #expect(rig.line.levels == [true, false])
    }

    @Test func receivedDataRaisesAndReadingLowersTheLine() {
        let rig = Rig()
        rig.write(UART.ier, UART.ierERBFI)
        rig.write(UART.mcr, UART.mcrDTR | UART.mcrRTS | UART.mcrOUT2)
        #expect(rig.line.levels.isEmpty)
        #expect(rig.serial.enqueueInput([1, 2]) == 2)
        #expect(rig.line.levels == [true])
        #expect(rig.serial.interruptAsserted)
        _ = rig.read(UART.rbr)
        #expect(rig.line.levels == [true])
        _ = rig.read(UART.rbr)
        #expect(rig.line.levels == [true, false])
        #expect(!rig.serial.interruptAsserted)
    }

    @Test func out2GatesTheInterruptLine() {
        let rig = Rig()
        rig.write(UART.ier, UART.ierERBFI)
        #expect(rig.serial.enqueueInput([1]) == 1)
        // Pending in IIR, but with OUT2 clear nothing reaches the PIC.
        #expect(rig.read(UART.iir) == UART.iirDataAvailable)
        #expect(rig.line.levels.isEmpty)
        rig.write(UART.mcr, UART.mcrOUT2)
        #expect(rig.line.levels == [true])
        rig.write(UART.mcr, 0)
        #expect(rig.line.levels == [true, false])
    }

    @Test func disablingTheInterruptLowersTheLine() {
        let rig = Rig()
        rig.write(UART.mcr, UART.mcrOUT2)
        rig.write(UART.ier, UART.ierERBFI)
        #expect(rig.serial.enqueueInput([1]) == 1)
        #expect(rig.line.levels == [true])
        rig.write(UART.ier, 0)
        #expect(rig.line.levels == [true, false])
        #expect(rig.read(UART.iir) == UART.iirNone)
    }

    @Test func modemStatusReportsAReadyTerminal() {
        let rig = Rig()
        #expect(rig.read(UART.msr) == UART.msrCTS | UART.msrDSR | UART.msrDCD)
        rig.write(UART.mcr, UART.mcrDTR | UART.mcrRTS | UART.mcrOUT2)
        #expect(rig.read(UART.msr) == UART.msrCTS | UART.msrDSR | UART.msrDCD)
    }

    @Test func loopbackFeedsTransmittedBytesToTheReceiver() {
        let rig = Rig()
        rig.write(UART.mcr, UART.mcrLOOP)
        rig.write(UART.thr, 0x5a)
        rig.write(UART.thr, 0x00)
        #expect(rig.output.bytes.isEmpty)
        #expect(rig.read(UART.lsr) & UART.lsrDR != 0)
        #expect(rig.read(UART.rbr) == 0x5a)
        #expect(rig.read(UART.rbr) == 0x00)
        #expect(rig.read(UART.lsr) & UART.lsrDR == 0)
        // The serial input is disconnected while looping back.
        #expect(rig.serial.inputSpace == 0)
        #expect(rig.serial.enqueueInput([1]) == 0)

        rig.write(UART.mcr, 0)
        rig.write(UART.thr, 0x5a)
        #expect(rig.output.bytes == [0x5a])
        #expect(rig.serial.enqueueInput([1]) == 1)
    }

    @Test func loopbackWiresModemOutputsToInputs() {
        let rig = Rig()
        // Linux's autoconfig check: LOOP | OUT2 | RTS must read back DCD | CTS.
        rig.write(UART.mcr, UART.mcrLOOP | UART.mcrOUT2 | UART.mcrRTS)
        #expect(rig.read(UART.msr) & 0xf0 == UART.msrDCD | UART.msrCTS)
        rig.write(UART.mcr, UART.mcrLOOP | UART.mcrDTR | UART.mcrOUT1)
        #expect(rig.read(UART.msr) & 0xf0 == UART.msrDSR | UART.msrRI)
        rig.write(UART.mcr, UART.mcrLOOP | UART.mcrDTR | UART.mcrRTS | UART.mcrOUT1 | UART.mcrOUT2)
        #expect(rig.read(UART.msr) & 0xf0 == 0xf0)
        #expect(rig.serial.modemControl == 0b0001_1111)
    }

    @Test func loopbackModemChangesSetDeltasAndRaiseModemStatus() {
        let rig = Rig()
        rig.write(UART.ier, UART.ierEDSSI)
        #expect(rig.read(UART.iir) == UART.iirNone)
        // Entering loopback with only RTS: CTS stays on, DSR and DCD drop.
        rig.write(UART.mcr, UART.mcrLOOP | UART.mcrRTS)
        #expect(rig.read(UART.iir) == UART.iirModemStatus)
        #expect(rig.read(UART.msr) == UART.msrCTS | UART.msrDDCD | UART.msrDDSR)
        // Reading MSR clears the deltas and with them the interrupt.
        #expect(rig.read(UART.msr) == UART.msrCTS)
        #expect(rig.read(UART.iir) == UART.iirNone)
        // RI's trailing edge, not its leading one, sets TERI.
        rig.write(UART.mcr, UART.mcrLOOP | UART.mcrRTS | UART.mcrOUT1)
        #expect(rig.read(UART.msr) == UART.msrCTS | UART.msrRI)
        rig.write(UART.mcr, UART.mcrLOOP | UART.mcrRTS)
        #expect(rig.read(UART.msr) == UART.msrCTS | UART.msrTERI)
    }

    @Test func loopbackKeepsTheInterruptLineLow() {
        // In loopback the datasheet forces OUT2's pin inactive, which on a PC
        // disconnects INTR from the PIC.
        let rig = Rig()
        rig.write(UART.ier, UART.ierERBFI)
        rig.write(UART.mcr, UART.mcrLOOP | UART.mcrOUT2)
        rig.write(UART.thr, 0x41)
        #expect(rig.read(UART.iir) == UART.iirDataAvailable)
        #expect(rig.line.levels.isEmpty)
        rig.write(UART.mcr, UART.mcrOUT2)
        #expect(rig.line.levels == [true])
    }

    @Test func loopbackOverrunIsReportedOnceAsLineStatus() {
        let rig = Rig()
        rig.write(UART.ier, UART.ierELSI | UART.ierERBFI)
        rig.write(UART.mcr, UART.mcrLOOP)
        for byte in 0..<65 { rig.write(UART.thr, UInt8(byte)) }
        #expect(rig.read(UART.iir) == UART.iirLineStatus)
        #expect(rig.read(UART.lsr) == UART.lsrDR | UART.lsrOE | UART.lsrTHRE | UART.lsrTEMT)
        #expect(rig.read(UART.lsr) == UART.lsrDR | UART.lsrTHRE | UART.lsrTEMT)
        #expect(rig.read(UART.iir) == UART.iirDataAvailable)
        // The 65th byte was the one lost.
        let received = (0..<64).map { _ in rig.read(UART.rbr) }
        #expect(received == (0..<64).map { UInt8($0) })
    }

    @Test func scratchRegisterStoresAByte() {
        let rig = Rig()
        #expect(rig.read(UART.scr) == 0)
        for value: UInt8 in [0x55, 0xaa, 0x00, 0xff] {
            rig.write(UART.scr, value)
            #expect(rig.read(UART.scr) == value)
        }
        #expect(rig.output.bytes.isEmpty)
    }

    @Test func unimplementedBitsReadAsZero() {
        let rig = Rig()
        rig.write(UART.ier, 0xff)
        #expect(rig.read(UART.ier) == 0b0000_1111)
        rig.write(UART.mcr, 0xef)
        #expect(rig.read(UART.mcr) == 0b0000_1111)
    }

    @Test func lineControlIsAPlainRegister() {
        let rig = Rig()
        #expect(rig.read(UART.lcr) == UART.lcr8N1)
        rig.write(UART.lcr, 0b0001_1010)
        #expect(rig.read(UART.lcr) == 0b0001_1010)
        #expect(rig.serial.lineControl == 0b0001_1010)
    }

    @Test func statusRegistersIgnoreWrites() {
        let rig = Rig()
        rig.write(UART.lsr, 0x00)
        rig.write(UART.msr, 0x00)
        #expect(rig.read(UART.lsr) == UART.lsrTHRE | UART.lsrTEMT)
        #expect(rig.read(UART.msr) == UART.msrCTS | UART.msrDSR | UART.msrDCD)
    }

    @Test func accessesPastTheLastRegisterAreHarmless() {
        let rig = Rig()
        rig.write(UART.scr, 0x12)
        // A 2-byte read at SCR takes SCR and an undecoded byte.
        #expect(rig.serial.read(offset: UART.scr, size: 2) == 0xff12)
        #expect(rig.serial.write(offset: UART.scr, size: 4, value: 0xffff_ff34) == nil)
        #expect(rig.read(UART.scr) == 0x34)
    }
}
