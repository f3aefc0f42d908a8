import VMCore

/// An Intel 8042 keyboard controller with nothing plugged into it: enough of
/// the PC's i8042 for Linux's driver to probe it without hanging, and for
/// `reboot=k` (and any OS's "pulse the reset line") to reset the machine.
///
/// A PC decodes the controller at two ports that are not adjacent, so one
/// controller is reached through two adapters, each registered on its own:
///
/// ```swift
/// let i8042 = I8042Controller(keyboardInterrupt: irq1, auxInterrupt: irq12)
/// try bus.register(i8042.dataPort, at: 0x60, length: I8042Controller.Port.portCount)
/// try bus.register(i8042.statusCommandPort, at: 0x64, length: I8042Controller.Port.portCount)
/// ```
///
/// | port | read                 | write                                  |
/// |------|----------------------|----------------------------------------|
/// | 0x60 | output buffer        | parameter of the last command, else to the keyboard |
/// | 0x64 | status register      | controller command                     |
///
/// Commands take effect at once, so the input buffer is never full (status
/// IBF is always clear) and every reply is in the output buffer by the time
/// the guest polls OBF. The output buffer holds one byte, as on the chip; a
/// reply the guest did not read is replaced by the next one.
///
/// No keyboard or mouse answers commands. Bytes sent to either device are
/// dropped without a reply, as a controller with empty sockets does, so a
/// driver that waits for an ACK times out (Linux's atkbd and psmouse give up
/// after a few hundred milliseconds each; `i8042.nokbd i8042.noaux` skips
/// them, and `i8042.dumbkbd` makes atkbd take the keyboard without asking).
///
/// The VMM can still type on the keyboard side (`press(_:)`, `sendCtrlAltDel()`,
/// which Firecracker's `SendCtrlAltDel` action uses): the keys' scan codes
/// (set 2, as a keyboard sends them; set 1 when the command byte's translate
/// bit is on, as the controller translates them) wait in a 16-byte queue and
/// move into the output buffer one at a time, while the keyboard interface is
/// enabled and the buffer is empty, each raising IRQ1 when the command byte
/// enables it. A controller reply takes the output buffer from a key byte
/// waiting there (that byte is lost, as when a real guest does not read it).
///
/// Supported commands (everything else is accepted and ignored):
/// 0x20-0x3f read internal RAM (0x20: the command byte), 0x60-0x7f write it,
/// 0xa7/0xa8 disable/enable the aux interface, 0xa9/0xab aux/keyboard interface
/// test (0x00: no error), 0xaa self-test (0x55), 0xad/0xae disable/enable the
/// keyboard interface, 0xc0 read input port, 0xd0/0xd1 read/write output port,
/// 0xd2/0xd3 write the keyboard/aux output buffer (loopback, which Linux's
/// AUX and MUX probes use), 0xd4 write to the aux device, 0xf0-0xff pulse
/// output lines (0xfe pulses reset).
///
/// Not thread-safe: the machine serialises guest accesses to its buses.
public final class I8042Controller {
    // MARK: Register bits, named as in the 8042 / IBM PC AT technical reference

    /// Status register (read at 0x64).
    private enum Status {
        /// Output Buffer Full: a byte waits at 0x60.
        static let obf: UInt8 = 0b0000_0001
        /// Input Buffer Full. Never set: every write is consumed at once,
        /// so Linux's `i8042_wait_write` and `kb_wait` never spin.
        static let ibf: UInt8 = 0b0000_0010
        /// System Flag, a copy of command-byte bit 2 (set once POST passed).
        static let sys: UInt8 = 0b0000_0100
        /// Command/Data: the last write went to 0x64 (1) or 0x60 (0).
        static let a2: UInt8 = 0b0000_1000
        /// Inhibit switch: 1 = keyboard not inhibited (no key lock fitted).
        static let unlocked: UInt8 = 0b0001_0000
        /// Auxiliary Output Buffer Full: the byte at 0x60 came from the aux port.
        static let auxData: UInt8 = 0b0010_0000
    }

    /// The command byte ("controller configuration byte"), internal RAM byte 0.
    private enum CommandByte {
        /// Raise IRQ1 when the output buffer holds a keyboard (non-aux) byte.
        static let keyboardInterrupt: UInt8 = 0b0000_0001
        /// Raise IRQ12 when the output buffer holds an aux byte.
        static let auxInterrupt: UInt8 = 0b0000_0010
        /// System Flag, mirrored in status bit 2.
        static let systemFlag: UInt8 = 0b0000_0100
        /// Keyboard interface disabled (clock held low).
        static let keyboardDisabled: UInt8 = 0b0001_0000
        /// Aux interface disabled (clock held low).
        static let auxDisabled: UInt8 = 0b0010_0000
        /// Translate keyboard scan codes to set 1.
        static let translate: UInt8 = 0b0100_0000
        /// What a BIOS leaves after POST with no devices found: translation
        /// on, both interfaces off with their interrupts, POST passed.
        static let afterPOST: UInt8 = translate | auxDisabled | keyboardDisabled | systemFlag
    }

    /// The output port (commands 0xd0/0xd1).
    private enum OutputPort {
        /// System reset, active low: writing 0 here resets the CPU.
        static let resetReleased: UInt8 = 0b0000_0001
        /// Gate A20. Stored only: KVM has no A20 mask to apply.
        static let gateA20: UInt8 = 0b0000_0010
        /// Bits 2-3 are unused and read as 1; bits 6-7 (keyboard clock and
        /// data) idle high. What QEMU's controller reads after reset.
        static let atReset: UInt8 = 0b1100_1111
    }

    /// The input port (command 0xc0): bit 7 set = keyboard not inhibited.
    private static let inputPort: UInt8 = 0b1000_0000

    /// Controller commands, written to 0x64.
    private enum Command {
        static let readRAMFirst: UInt8 = 0x20  // 0x20-0x3f: read internal RAM byte (cmd & 0x1f)
        static let readRAMLast: UInt8 = 0x3f
        static let writeRAMFirst: UInt8 = 0x60  // 0x60-0x7f: write it (byte follows at 0x60)
        static let writeRAMLast: UInt8 = 0x7f
        static let disableAux: UInt8 = 0xa7
        static let enableAux: UInt8 = 0xa8
        static let testAux: UInt8 = 0xa9
        static let selfTest: UInt8 = 0xaa
        static let testKeyboard: UInt8 = 0xab
        static let disableKeyboard: UInt8 = 0xad
        static let enableKeyboard: UInt8 = 0xae
        static let readInputPort: UInt8 = 0xc0
        static let readOutputPort: UInt8 = 0xd0
        static let writeOutputPort: UInt8 = 0xd1
        static let writeKeyboardBuffer: UInt8 = 0xd2
        static let writeAuxBuffer: UInt8 = 0xd3
        static let writeAuxDevice: UInt8 = 0xd4
        static let pulseFirst: UInt8 = 0xf0  // 0xf0-0xff: pulse output lines whose bit (0-3) is 0
    }

    /// Replies to the self and interface tests.
    private enum Reply {
        static let selfTestPassed: UInt8 = 0x55
        static let interfaceTestPassed: UInt8 = 0x00
    }

    /// What the next byte written to 0x60 means.
    private enum PendingWrite {
        case toKeyboard
        case ram(index: Int)
        case outputPort
        case keyboardBuffer
        case auxBuffer
        case auxDevice

        /// The command that is waiting for this parameter; nil for a byte to the keyboard.
        var command: UInt8? {
            switch self {
            case .toKeyboard: return nil
            case .ram(let index): return Command.writeRAMFirst + UInt8(index)
            case .outputPort: return Command.writeOutputPort
            case .keyboardBuffer: return Command.writeKeyboardBuffer
            case .auxBuffer: return Command.writeAuxBuffer
            case .auxDevice: return Command.writeAuxDevice
            }
        }

        /// What a write to 0x60 means after `command`, or nil if `command` takes no parameter.
        init?(command: UInt8?) {
            guard let command else {
                self = .toKeyboard
                return
            }
            switch command {
            case Command.writeRAMFirst...Command.writeRAMLast: self = .ram(index: Int(command - Command.writeRAMFirst))
            case Command.writeOutputPort: self = .outputPort
            case Command.writeKeyboardBuffer: self = .keyboardBuffer
            case Command.writeAuxBuffer: self = .auxBuffer
            case Command.writeAuxDevice: self = .auxDevice
            default: return nil
            }
        }
    }

    /// The bytes of internal RAM the 0x20-0x3f / 0x60-0x7f commands address.
    public static let ramSize = 32

    // MARK: State

    private let keyboardInterrupt: (any InterruptLine)?
    private let auxInterrupt: (any InterruptLine)?

    /// Internal RAM, allocated once; byte 0 is the command byte.
    private var ram = [UInt8](repeating: 0, count: I8042Controller.ramSize)
    /// Key bytes from the keyboard that wait for the output buffer, oldest first,
    /// as the guest will read them (already translated when translation was on).
    private var keyboardQueue: [UInt8] = []
    private var pendingWrite = PendingWrite.toKeyboard
    private var outputByte: UInt8 = 0
    /// Whether the output buffer holds a byte the guest has not read (status OBF).
    public private(set) var outputBufferFull = false
    /// Whether that byte came from the aux port (status AUXDATA).
    private var outputIsAux = false
    /// Whether the last write went to 0x64 (status A2).
    private var lastWriteWasCommand = true
    /// The output port. Bit 0 (reset) always reads 1: the reset is a pulse
    /// that the machine acts on, not a level the controller holds.
    public private(set) var outputPort = OutputPort.atReset
    /// Whether IRQ1 is currently driven high.
    public private(set) var keyboardInterruptAsserted = false
    /// Whether IRQ12 is currently driven high.
    public private(set) var auxInterruptAsserted = false
    /// Bytes the guest sent to the (absent) keyboard or aux device, dropped.
    public private(set) var droppedDeviceBytes = 0

    /// A controller as a BIOS leaves it, driving `keyboardInterrupt` (IRQ1)
    /// and `auxInterrupt` (IRQ12) when given and enabled by the command byte.
    public init(keyboardInterrupt: (any InterruptLine)? = nil, auxInterrupt: (any InterruptLine)? = nil) {
        self.keyboardInterrupt = keyboardInterrupt
        self.auxInterrupt = auxInterrupt
        ram[0] = CommandByte.afterPOST
        keyboardQueue.reserveCapacity(Self.keyboardQueueCapacity)
    }

    // MARK: Saved state

    /// Everything about the controller that shapes what the guest sees next,
    /// as a plain value for snapshots, clones and migration. The interrupt
    /// lines are the machine's wiring, not state. The status register is not
    /// stored: it is computed from these fields on every read.
    /// `droppedDeviceBytes` is a statistic of this run, not state, and is
    /// neither saved nor restored.
    public struct State: Codable, Hashable, Sendable {
        /// Internal RAM, `ramSize` bytes; byte 0 is the command byte.
        public var ram: [UInt8]
        /// The command whose parameter the next write to 0x60 will be (0x60-0x7f,
        /// 0xd1-0xd4), or nil when such a write goes to the keyboard.
        public var pendingCommand: UInt8?
        /// The byte waiting in the output buffer (status OBF), if any.
        public var outputBuffer: UInt8?
        /// Whether that byte came from the aux port (status AUXDATA).
        public var outputFromAux: Bool
        /// Whether the last write went to 0x64 (status A2).
        public var lastWriteWasCommand: Bool
        /// The output port; bit 0 (reset released) always reads 1.
        public var outputPort: UInt8
        /// Key bytes waiting for the output buffer, oldest first, at most
        /// `keyboardQueueCapacity`. Absent in snapshots taken before the
        /// keyboard queue existed, and then empty.
        public var keyboardQueue: [UInt8]

        /// A state from its fields, taken as given; `restore(_:)` checks them.
        public init(
            ram: [UInt8], pendingCommand: UInt8?, outputBuffer: UInt8?, outputFromAux: Bool, lastWriteWasCommand: Bool,
            outputPort: UInt8, keyboardQueue: [UInt8] = []
        ) {
            self.ram = ram
            self.pendingCommand = pendingCommand
            self.outputBuffer = outputBuffer
            self.outputFromAux = outputFromAux
            self.lastWriteWasCommand = lastWriteWasCommand
            self.outputPort = outputPort
            self.keyboardQueue = keyboardQueue
        }

        private enum CodingKeys: String, CodingKey {
            case ram, pendingCommand, outputBuffer, outputFromAux, lastWriteWasCommand, outputPort, keyboardQueue
        }

        /// Decodes a state; `keyboardQueue` may be missing (older snapshots).
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            ram = try container.decode([UInt8].self, forKey: .ram)
            pendingCommand = try container.decodeIfPresent(UInt8.self, forKey: .pendingCommand)
            outputBuffer = try container.decodeIfPresent(UInt8.self, forKey: .outputBuffer)
            outputFromAux = try container.decode(Bool.self, forKey: .outputFromAux)
            lastWriteWasCommand = try container.decode(Bool.self, forKey: .lastWriteWasCommand)
            outputPort = try container.decode(UInt8.self, forKey: .outputPort)
            keyboardQueue = try container.decodeIfPresent([UInt8].self, forKey: .keyboardQueue) ?? []
        }
    }

    /// The controller's current state. Taking it changes nothing.
    public var state: State {
        State(
            ram: ram, pendingCommand: pendingWrite.command, outputBuffer: outputBufferFull ? outputByte : nil,
            outputFromAux: outputIsAux, lastWriteWasCommand: lastWriteWasCommand, outputPort: outputPort,
            keyboardQueue: keyboardQueue)
    }

    /// Replaces the controller's state with `state`, then drives IRQ1 and
    /// IRQ12 to the levels the state implies, whatever they were before, so
    /// that the interrupt controller (restored separately) and the i8042 agree.
    ///
    /// - Throws: `DeviceStateError` naming the first field the controller
    ///   could not hold, without changing anything.
    public func restore(_ state: State) throws(DeviceStateError) {
        guard state.ram.count == Self.ramSize else {
            throw DeviceStateError(
                device: "I8042Controller", field: "ram", problem: .wrongLength(count: state.ram.count, expected: Self.ramSize))
        }
        guard let pending = PendingWrite(command: state.pendingCommand) else {
            throw DeviceStateError(
                device: "I8042Controller", field: "pendingCommand",
                problem: .unknownValue(
                    value: UInt64(state.pendingCommand ?? 0),
                    expected: "a command that takes a parameter (0x60-0x7f, 0xd1-0xd4) or null"))
        }
        guard state.outputPort & OutputPort.resetReleased != 0 else {
            throw DeviceStateError(
                device: "I8042Controller", field: "outputPort",
                problem: .requiredBitsClear(value: UInt64(state.outputPort), required: UInt64(OutputPort.resetReleased)))
        }
        guard state.keyboardQueue.count <= Self.keyboardQueueCapacity else {
            throw DeviceStateError(
                device: "I8042Controller", field: "keyboardQueue",
                problem: .tooLong(count: state.keyboardQueue.count, maximum: Self.keyboardQueueCapacity))
        }

        for (index, byte) in state.ram.enumerated() { ram[index] = byte }
        pendingWrite = pending
        outputByte = state.outputBuffer ?? 0
        outputBufferFull = state.outputBuffer != nil
        outputIsAux = state.outputFromAux
        lastWriteWasCommand = state.lastWriteWasCommand
        outputPort = state.outputPort
        keyboardQueue.removeAll(keepingCapacity: true)
        keyboardQueue.append(contentsOf: state.keyboardQueue)
        moveKeyToOutputBuffer()
        // Unconditionally, unlike updateInterruptLines(): the lines' levels
        // outside this device are unknown, so an edge-only update could leave them wrong.
        keyboardInterruptAsserted = keyboardInterruptLevel
        keyboardInterrupt?.setLevel(keyboardInterruptAsserted)
        auxInterruptAsserted = auxInterruptLevel
        auxInterrupt?.setLevel(auxInterruptAsserted)
    }

    // MARK: Ports

    /// The data port (0x60 on a PC), to register with length 1.
    ///
    /// Each call makes a new adapter that keeps this controller alive; the
    /// controller does not reference its adapters, so there is no cycle.
    public var dataPort: Port { Port(controller: self, register: .data) }

    /// The status (read) and command (write) port (0x64 on a PC), to register with length 1.
    public var statusCommandPort: Port { Port(controller: self, register: .statusCommand) }

    /// One of the controller's two ports as a `PortIODevice`.
    ///
    /// Offset 0 is the register. The low byte of a wider access is the
    /// register and the bytes above it read as all ones (nothing drives
    /// them); other offsets, if registered, read all ones and ignore writes.
    public final class Port: PortIODevice {
        /// The ports each adapter is registered with: one.
        public static let portCount: UInt16 = 1

        /// Which register an adapter reaches.
        public enum Register: Hashable, Sendable {
            /// 0x60: output buffer on read, data or command parameter on write.
            case data
            /// 0x64: status on read, command on write.
            case statusCommand
        }

        /// The controller behind this port.
        public let controller: I8042Controller
        /// The register this port reaches.
        public let register: Register

        init(controller: I8042Controller, register: Register) {
            self.controller = controller
            self.register = register
        }

        public func read(offset: UInt16, size: Int) -> UInt64 {
            let mask = AccessWidth.mask(size: size)
            // A zero-size access (which no instruction makes) must not consume the output buffer.
            guard offset == 0, size > 0 else { return mask }
            let byte = register == .data ? controller.readData() : controller.status
            return (~0xff | UInt64(byte)) & mask
        }

        public func write(offset: UInt16, size: Int, value: UInt64) -> DeviceRequest? {
            guard offset == 0, size > 0 else { return nil }
            let byte = UInt8(truncatingIfNeeded: value)
            return register == .data ? controller.writeData(byte) : controller.writeCommand(byte)
        }
    }

    // MARK: Registers

    /// The command byte (internal RAM byte 0).
    public var commandByte: UInt8 { ram[0] }

    /// The status register as the guest would read it at 0x64.
    public var status: UInt8 {
        var status = Status.unlocked
        if outputBufferFull { status |= Status.obf }
        if outputBufferFull && outputIsAux { status |= Status.auxData }
        if commandByte & CommandByte.systemFlag != 0 { status |= Status.sys }
        if lastWriteWasCommand { status |= Status.a2 }
        return status
    }

    /// A read of 0x60: the output buffer, which the read empties. With
    /// nothing pending it reads 0 (the stale latch of a controller that has
    /// never been sent anything) and leaves OBF clear.
    public func readData() -> UInt8 {
        guard outputBufferFull else { return 0 }
        outputBufferFull = false
        // IRQ1 falls, then rises again for the next key byte: an edge for
        // the PIC, which latches ISA lines on the rising edge.
        let byte = outputByte
        updateInterruptLines()
        moveKeyToOutputBuffer()
        return byte
    }

    /// A write of `byte` to 0x60: the parameter of the last command, or a
    /// byte for the keyboard.
    public func writeData(_ byte: UInt8) -> DeviceRequest? {
        lastWriteWasCommand = false
        let pending = pendingWrite
        pendingWrite = .toKeyboard
        switch pending {
        case .toKeyboard, .auxDevice:
            droppedDeviceBytes &+= 1
        case .ram(let index):
            ram[index] = byte
            // The command byte gates the interrupts of a byte already waiting,
            // and the keyboard interface, which may now pass a key on.
            updateInterruptLines()
            moveKeyToOutputBuffer()
        case .outputPort:
            outputPort = byte | OutputPort.resetReleased
            if byte & OutputPort.resetReleased == 0 { return .reset }
        case .keyboardBuffer:
            queueOutput(byte, fromAux: false)
        case .auxBuffer:
            queueOutput(byte, fromAux: true)
        }
        return nil
    }

    /// A write of `command` to 0x64.
    public func writeCommand(_ command: UInt8) -> DeviceRequest? {
        lastWriteWasCommand = true
        // A new command abandons a parameter the previous one was waiting for.
        pendingWrite = .toKeyboard
        switch command {
        case Command.readRAMFirst...Command.readRAMLast:
            queueOutput(ram[Int(command - Command.readRAMFirst)], fromAux: false)
        case Command.writeRAMFirst...Command.writeRAMLast:
            pendingWrite = .ram(index: Int(command - Command.writeRAMFirst))
        case Command.disableAux:
            setCommandByteBits(CommandByte.auxDisabled, on: true)
        case Command.enableAux:
            setCommandByteBits(CommandByte.auxDisabled, on: false)
        case Command.testAux, Command.testKeyboard:
            queueOutput(Reply.interfaceTestPassed, fromAux: false)
        case Command.selfTest:
            // A passed self-test sets the system flag, as on the chip.
            setCommandByteBits(CommandByte.systemFlag, on: true)
            queueOutput(Reply.selfTestPassed, fromAux: false)
        case Command.disableKeyboard:
            setCommandByteBits(CommandByte.keyboardDisabled, on: true)
        case Command.enableKeyboard:
            setCommandByteBits(CommandByte.keyboardDisabled, on: false)
            moveKeyToOutputBuffer()
        case Command.readInputPort:
            queueOutput(Self.inputPort, fromAux: false)
        case Command.readOutputPort:
            queueOutput(outputPort, fromAux: false)
        case Command.writeOutputPort:
            pendingWrite = .outputPort
        case Command.writeKeyboardBuffer:
            pendingWrite = .keyboardBuffer
        case Command.writeAuxBuffer:
            pendingWrite = .auxBuffer
        case Command.writeAuxDevice:
            pendingWrite = .auxDevice
        case Command.pulseFirst...UInt8.max:
            // Bits 0-3 select the output lines to pulse low; bit 0 is reset.
            if command & OutputPort.resetReleased == 0 { return .reset }
        default:
            break
        }
        return nil
    }

    // MARK: Keyboard

    /// How many key bytes wait between the keyboard and the output buffer at most (as in Firecracker's i8042).
    public static let keyboardQueueCapacity = 16

    /// A key the VMM can press on the keyboard side of the controller.
    public enum Key: Hashable, Sendable {
        case leftControl
        case leftAlt
        case delete

        /// The make code in scan code set 2, what the keyboard sends.
        var set2: [UInt8] {
            switch self {
            case .leftControl: return [0x14]
            case .leftAlt: return [0x11]
            case .delete: return [0xe0, 0x71]
            }
        }

        /// The make code in scan code set 1, what the controller delivers with translation on.
        var set1: [UInt8] {
            switch self {
            case .leftControl: return [0x1d]
            case .leftAlt: return [0x38]
            case .delete: return [0xe0, 0x53]
            }
        }
    }

    /// The keyboard queue had no room for a whole key sequence; nothing was queued.
    public struct KeyboardQueueFull: Error, Hashable, Sendable, CustomStringConvertible {
        /// The bytes the sequence needed.
        public var needed: Int
        /// The bytes free in the queue.
        public var free: Int

        public init(needed: Int, free: Int) {
            self.needed = needed
            self.free = free
        }

        public var description: String {
            "i8042 keyboard buffer full: \(needed) bytes needed, \(free) free (the guest is not reading port 0x60)"
        }
    }

    /// Key bytes waiting for the output buffer (not counting the one in it).
    public var queuedKeyBytes: Int { keyboardQueue.count }

    /// Presses `keys` in order (make codes only, as Firecracker sends them):
    /// their scan codes join the keyboard queue, and the first moves into the
    /// output buffer at once if it is free and the keyboard interface enabled.
    ///
    /// - Throws: `KeyboardQueueFull` when the whole sequence does not fit;
    ///   then nothing is queued.
    public func press(_ keys: [Key]) throws(KeyboardQueueFull) {
        let translate = commandByte & CommandByte.translate != 0
        let bytes = keys.flatMap { translate ? $0.set1 : $0.set2 }
        let free = Self.keyboardQueueCapacity - keyboardQueue.count
        guard bytes.count <= free else { throw KeyboardQueueFull(needed: bytes.count, free: free) }
        keyboardQueue.append(contentsOf: bytes)
        moveKeyToOutputBuffer()
    }

    /// Presses Ctrl, Alt and Delete, as Firecracker's `SendCtrlAltDel` does:
    /// set 2 bytes 14 11 e0 71, or set 1 bytes 1d 38 e0 53 with translation on.
    public func sendCtrlAltDel() throws(KeyboardQueueFull) {
        try press([.leftControl, .leftAlt, .delete])
    }

    /// Moves the oldest queued key byte into the output buffer when the
    /// buffer is empty and the keyboard interface enabled.
    private func moveKeyToOutputBuffer() {
        guard !outputBufferFull, !keyboardQueue.isEmpty, commandByte & CommandByte.keyboardDisabled == 0 else { return }
        queueOutput(keyboardQueue.removeFirst(), fromAux: false)
    }

    // MARK: Helpers

    private func setCommandByteBits(_ bits: UInt8, on: Bool) {
        if on { ram[0] |= bits } else { ram[0] &= ~bits }
        updateInterruptLines()
    }

    private func queueOutput(_ byte: UInt8, fromAux: Bool) {
        outputByte = byte
        outputIsAux = fromAux
        outputBufferFull = true
        updateInterruptLines()
    }

    /// The level IRQ1 should have: a keyboard byte waits and the command byte enables its interrupt.
    private var keyboardInterruptLevel: Bool {
        outputBufferFull && !outputIsAux && commandByte & CommandByte.keyboardInterrupt != 0
    }

    /// The level IRQ12 should have: an aux byte waits and the command byte enables its interrupt.
    private var auxInterruptLevel: Bool {
        outputBufferFull && outputIsAux && commandByte & CommandByte.auxInterrupt != 0
    }

    /// Drives IRQ1 and IRQ12 to match the output buffer and the command
    /// byte's enables, calling a line only when its level changes.
    private func updateInterruptLines() {
        let keyboardLevel = keyboardInterruptLevel
        let auxLevel = auxInterruptLevel
        if keyboardLevel != keyboardInterruptAsserted {
            keyboardInterruptAsserted = keyboardLevel
            keyboardInterrupt?.setLevel(keyboardLevel)
        }
        if auxLevel != auxInterruptAsserted {
            auxInterruptAsserted = auxLevel
            auxInterrupt?.setLevel(auxLevel)
        }
    }
}
