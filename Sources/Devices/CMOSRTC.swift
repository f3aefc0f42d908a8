import VMCore

/// The PC's CMOS RAM and real-time clock (a Motorola MC146818A), at ports
/// 0x70 (index) and 0x71 (data).
///
/// Register it with length `portCount` at 0x70:
///
/// | offset | read                      | write                                   |
/// |--------|---------------------------|-----------------------------------------|
/// | 0      | all ones (write-only)     | index: bits 6-0 select a byte; bit 7 (NMI disable) is kept but gates nothing |
/// | 1      | the selected byte         | the selected byte                       |
///
/// A wider access covers consecutive offsets, low byte first, so `outw` to
/// 0x70 sets the index and then writes the data, as the ISA bus would split
/// it; bytes past offset 1 read as all ones.
///
/// The time registers read the injected clock on every access, so the clock
/// never stops. Without a `subsecondClock`, status A's UIP bit is never set: a
/// guest waiting for the update cycle to end never waits. With one, UIP is
/// set during the last `updateCycleNanoseconds` of every second (the chip's
/// 244 µs warning plus its 1984 µs update), so a guest that waits for UIP to
/// rise and fall (kvm-unit-tests' `s3`) sees a second begin. By default the guest cannot set the
/// clock: writes to the time registers (and status B's SET bit) are ignored,
/// so a guest always reads the host's time and `hwclock --systohc` is
/// harmless. A machine made with `allowsGuestClockWrites` lets the guest set
/// it instead; the device then keeps the guest's time as an offset from the
/// injected clock (`clockOffset`), so the guest's clock keeps running with
/// the host's and survives a snapshot as a number, not a closure. As on the
/// chip, status B's SET bit freezes the time while the guest writes it (so
/// that setting the month before the day never passes through "February
/// 31"), and clearing SET starts it from what was written; a field written
/// without SET takes effect at once. The alarm registers and all other bytes
/// are plain RAM.
///
/// The alarm: the machine asks `secondsUntilAlarm(after:)` when the guest
/// suspends to RAM with status B's AIE set, and calls `alarmFired()` when it
/// wakes the guest at that second; status C then reads AF and IRQF once (a
/// read clears them). A byte of 0xc0-0xff in an alarm register matches any
/// value, as on the chip. No interrupt is raised while the guest runs (there
/// is no IRQ 8 line), and periodic and update-ended interrupts are not emulated.
///
/// At creation, the memory-size bytes hold the guest's RAM the way QEMU and
/// SeaBIOS lay them out, for firmware and boot loaders that size memory from CMOS.
///
/// Not thread-safe: the machine serialises guest accesses to its buses.
public final class CMOSRTC: PortIODevice {
    /// The ports the RTC decodes: index and data.
    public static let portCount: UInt16 = 2
    /// The bytes of CMOS RAM, clock registers included.
    public static let ramSize = 128
    /// Where RAM below 4 GiB ends by default: 3 GiB, leaving the last GiB for
    /// 32-bit MMIO (QEMU's q35 and i440fx use 2-3.5 GiB depending on size).
    public static let defaultLowMemoryLimit: UInt64 = 0xc000_0000

    // MARK: Register indexes, named as in the MC146818A datasheet

    private enum Index {
        static let seconds: UInt8 = 0x00
        static let minutes: UInt8 = 0x02
        static let hours: UInt8 = 0x04
        static let dayOfWeek: UInt8 = 0x06
        static let dayOfMonth: UInt8 = 0x07
        static let month: UInt8 = 0x08
        static let year: UInt8 = 0x09
        static let statusA: UInt8 = 0x0a
        static let statusB: UInt8 = 0x0b
        static let statusC: UInt8 = 0x0c
        static let statusD: UInt8 = 0x0d
        /// Not in the MC146818A: the PC AT's century byte, the one the ACPI
        /// FADT's CENTURY field points Linux to.
        static let century: UInt8 = 0x32
        /// Memory sizes, as IBM's AT BIOS and then QEMU/SeaBIOS place them.
        static let baseMemoryKiB: UInt8 = 0x15  // and 0x16: KiB below 640 KiB
        static let extendedMemoryKiB: UInt8 = 0x17  // and 0x18: KiB from 1 MiB, at most 65535
        static let extendedMemoryKiBCopy: UInt8 = 0x30  // and 0x31: the same, as POST found it
        static let memoryAbove16MiB: UInt8 = 0x34  // and 0x35: 64 KiB units from 16 MiB to the low limit
        static let memoryAbove4GiB: UInt8 = 0x5b  // 0x5b-0x5d: 64 KiB units above 4 GiB
    }

    /// Index port: bit 7 gates NMI on a PC, bits 6-0 select the byte.
    private static let indexMask: UInt8 = 0b0111_1111
    private static let nmiDisable: UInt8 = 0b1000_0000

    /// Status register A.
    private enum StatusA {
        /// Update In Progress. Read-only; see the type's comment.
        static let uip: UInt8 = 0b1000_0000
        /// Divider 010 (32.768 kHz time base) and rate 0110 (1024 Hz periodic
        /// interrupt): the power-on value a PC BIOS programs and Linux expects.
        static let powerOn: UInt8 = 0b0010_0110
    }

    /// Status register B.
    private enum StatusB {
        /// SET: the guest is setting the time; updates stop until it clears the bit.
        static let set: UInt8 = 0b1000_0000
        /// AIE: the alarm interrupt is enabled (and, through PM1, a wake event).
        static let aie: UInt8 = 0b0010_0000
        /// Data Mode: 1 = binary, 0 = BCD.
        static let dm: UInt8 = 0b0000_0100
        /// 24/12: 1 = 24-hour mode, 0 = 12-hour mode with the PM flag in the hours' bit 7.
        static let twentyFourHour: UInt8 = 0b0000_0010
        /// 24-hour BCD, no interrupts: what a PC BIOS leaves and Linux's
        /// rtc-cmos driver insists on ("only 24-hr supported").
        static let powerOn: UInt8 = twentyFourHour
    }

    /// Status register C: the interrupt flags, cleared by reading it.
    private enum StatusC {
        /// IRQF: an enabled interrupt's flag is set.
        static let irqf: UInt8 = 0b1000_0000
        /// AF: the alarm time was reached.
        static let af: UInt8 = 0b0010_0000
    }

    /// Alarm registers, each matched against the time register below it.
    private enum Alarm {
        static let seconds: UInt8 = 0x01
        static let minutes: UInt8 = 0x03
        static let hours: UInt8 = 0x05
        /// An alarm byte with both top bits set matches any value.
        static let dontCare: UInt8 = 0b1100_0000
    }

    /// How long before each second's start UIP reads as set: the chip's
    /// 244 µs warning plus its 1984 µs update cycle.
    public static let updateCycleNanoseconds = 2_228_000

    /// Status register D.
    private enum StatusD {
        /// Valid RAM and Time: the battery is good. Always set.
        static let vrt: UInt8 = 0b1000_0000
    }

    /// Bit 7 of the hours register in 12-hour mode: afternoon.
    private static let pm: UInt8 = 0b1000_0000

    // MARK: State

    private let clock: () -> RTCDateTime
    /// Nanoseconds since the injected clock's current second began, or nil.
    private let subsecondClock: (() -> Int)?
    /// Whether writes to the time registers set the guest's clock.
    public let allowsGuestClockWrites: Bool
    /// Seconds the guest's clock runs ahead of the injected clock (negative:
    /// behind). Zero unless the guest set the clock or a state was restored.
    public private(set) var clockOffset: Int64 = 0
    /// Index port bit 7, the PC's NMI disable, as last written. Stored so
    /// that a snapshot keeps it; nothing here delivers NMIs, so it gates nothing.
    public private(set) var nmiDisabled = false
    /// The time the guest is writing while status B's SET bit is on, frozen
    /// and taken field by field; nil otherwise. Clearing SET applies it.
    public private(set) var timeBeingSet: RTCDateTime?
    /// CMOS RAM, allocated once. The bytes of the time and status registers
    /// are unused: those registers are computed on each read.
    private var ram = [UInt8](repeating: 0, count: CMOSRTC.ramSize)
    /// The byte the data port reaches, 0-127.
    public private(set) var index: UInt8 = 0

    /// A CMOS RTC that reads the time from `clock` and reports
    /// `memorySize` bytes of guest RAM in the memory-size bytes.
    ///
    /// - Parameters:
    ///   - memorySize: Guest RAM in bytes.
    ///   - lowMemoryLimit: The guest-physical address where RAM below 4 GiB
    ///     ends (the start of the 32-bit MMIO hole); RAM beyond it is
    ///     reported above 4 GiB. Pass the machine's real split.
    ///   - allowsGuestClockWrites: Whether the guest may set the clock (see
    ///     the type's comment). Off by default, as the guest then always reads the host's time.
    ///   - subsecondClock: Nanoseconds since the second `clock` reads began
    ///     (0 to 999,999,999), for status A's UIP bit; without it UIP is never set.
    ///   - clock: The current date and time, called on every read of a
    ///     time register. Tests pass a fixed value; the machine passes the host's UTC time.
    public init(
        memorySize: UInt64, lowMemoryLimit: UInt64 = CMOSRTC.defaultLowMemoryLimit, allowsGuestClockWrites: Bool = false,
        subsecondClock: (() -> Int)? = nil, clock: @escaping () -> RTCDateTime
    ) {
        self.clock = clock
        self.subsecondClock = subsecondClock
        self.allowsGuestClockWrites = allowsGuestClockWrites
        ram[Int(Index.statusA)] = StatusA.powerOn
        ram[Int(Index.statusB)] = StatusB.powerOn
        storeMemorySize(memorySize, lowMemoryLimit: lowMemoryLimit)
    }

    // MARK: PortIODevice

    /// Reads `size` bytes from consecutive offsets, lowest first.
    public func read(offset: UInt16, size: Int) -> UInt64 {
        var value: UInt64 = 0
        for byte in 0..<min(max(size, 0), 8) {
            let port = Int(offset) + byte
            let registerValue = port == 1 ? readRegister(index) : 0xff
            // Reading status C acknowledges its flags, as on the chip.
            if port == 1, index == Index.statusC { ram[Int(Index.statusC)] = 0 }
            value |= UInt64(registerValue) << (UInt64(byte) * 8)
        }
        return value
    }

    /// Writes `size` bytes to consecutive offsets, lowest first. The RTC
    /// never asks anything of the machine.
    public func write(offset: UInt16, size: Int, value: UInt64) -> DeviceRequest? {
        for byte in 0..<min(max(size, 0), 8) {
            let port = Int(offset) + byte
            let byteValue = UInt8(truncatingIfNeeded: value >> (UInt64(byte) * 8))
            if port == 0 {
                index = byteValue & Self.indexMask
                nmiDisabled = byteValue & Self.nmiDisable != 0
            } else if port == 1 {
                writeRegister(index, byteValue)
            }
        }
        return nil
    }

    // MARK: Registers

    /// The byte at `index` as the guest would read it, without the side
    /// effect of a guest's read of status C (which clears its flags).
    public func readRegister(_ index: UInt8) -> UInt8 {
        let index = index & Self.indexMask
        switch index {
        case Index.seconds: return encode(guestTime().second)
        case Index.minutes: return encode(guestTime().minute)
        case Index.hours: return encodeHours(guestTime().hour)
        case Index.dayOfWeek: return encode(guestTime().weekday)
        case Index.dayOfMonth: return encode(guestTime().day)
        case Index.month: return encode(guestTime().month)
        case Index.year: return encode(guestTime().year)
        case Index.century: return encode(guestTime().year / 100)
        case Index.statusA: return ram[Int(index)] & ~StatusA.uip | (updateInProgress ? StatusA.uip : 0)
        case Index.statusC: return ram[Int(index)]
        case Index.statusD: return StatusD.vrt
        default: return ram[Int(index)]
        }
    }

    /// Stores `value` at `index` as a guest write would.
    public func writeRegister(_ index: UInt8, _ value: UInt8) {
        let index = index & Self.indexMask
        switch index {
        case Index.seconds, Index.minutes, Index.hours, Index.dayOfMonth, Index.month, Index.year, Index.century:
            // Unless allowed, the guest cannot move the host's clock; see the type's comment.
            if allowsGuestClockWrites { setTimeField(index, value) }
        case Index.dayOfWeek:
            // Computed from the date, so there is nothing to set.
            break
        case Index.statusA:
            ram[Int(index)] = value & ~StatusA.uip
        case Index.statusB:
            ram[Int(index)] = value
            writeSetBit(value & StatusB.set != 0)
        case Index.statusC, Index.statusD:
            // Read-only.
            break
        default:
            ram[Int(index)] = value
        }
    }

    // MARK: Update cycle and alarm

    /// Whether the update cycle is under way or about to start (UIP).
    private var updateInProgress: Bool {
        guard let subsecondClock, timeBeingSet == nil else { return false }
        return subsecondClock() >= 1_000_000_000 - Self.updateCycleNanoseconds
    }

    /// Whether the guest enabled the alarm interrupt (status B's AIE).
    public var alarmInterruptEnabled: Bool { ram[Int(Index.statusB)] & StatusB.aie != 0 }

    /// How many whole seconds after the injected clock reads `host` the
    /// guest's time next matches the alarm registers (1 to 86,400), or nil
    /// when AIE is clear or no time of day matches them.
    public func secondsUntilAlarm(after host: RTCDateTime) -> Int? {
        guard alarmInterruptEnabled, timeBeingSet == nil else { return nil }
        let alarm = (second: ram[Int(Alarm.seconds)], minute: ram[Int(Alarm.minutes)], hour: ram[Int(Alarm.hours)])
        // An alarm byte no time of day encodes to never matches: say so at once.
        guard (0..<60).contains(where: { matches(alarm.second, encode($0)) }),
            (0..<60).contains(where: { matches(alarm.minute, encode($0)) }),
            (0..<24).contains(where: { matches(alarm.hour, encodeHours($0)) })
        else { return nil }
        // The alarm compares the time of day only, so one day of seconds covers every case.
        let secondsPerDay: Int64 = 86_400
        let start = runningTime(host: host).secondsSince1970 % secondsPerDay
        let startOfDay = start < 0 ? start + secondsPerDay : start
        for delta in 1...Int(secondsPerDay) {
            let second = Int((startOfDay + Int64(delta)) % secondsPerDay)
            if matches(alarm.second, encode(second % 60)), matches(alarm.minute, encode(second / 60 % 60)),
                matches(alarm.hour, encodeHours(second / 3600))
            {
                return delta
            }
        }
        return nil
    }

    /// The alarm time was reached: status C gets AF, and IRQF when AIE is set.
    public func alarmFired() {
        ram[Int(Index.statusC)] |= StatusC.af | (alarmInterruptEnabled ? StatusC.irqf : 0)
    }

    /// Whether alarm byte `alarm` matches time register value `value`.
    private func matches(_ alarm: UInt8, _ value: UInt8) -> Bool {
        alarm & Alarm.dontCare == Alarm.dontCare || alarm == value
    }

    // MARK: Clock

    /// The guest's date and time: frozen while it sets it, else the
    /// injected clock moved by `clockOffset`.
    private func guestTime() -> RTCDateTime {
        if let timeBeingSet { return timeBeingSet }
        return runningTime(host: clock())
    }

    /// The guest's running time when the injected clock reads `host`.
    private func runningTime(host: RTCDateTime) -> RTCDateTime {
        // Without an offset the clock's fields pass through untouched, as
        // they always did, out-of-range ones included.
        guard clockOffset != 0 else { return host }
        return RTCDateTime(secondsSince1970: host.secondsSince1970 &+ clockOffset)
    }

    /// Status B's SET bit was written: setting it freezes the time for the
    /// guest to write, clearing it starts the clock from what was written.
    private func writeSetBit(_ set: Bool) {
        if set {
            // Only a guest allowed to set the clock can start; holding SET
            // again while already setting keeps what was written so far.
            if allowsGuestClockWrites && timeBeingSet == nil { timeBeingSet = runningTime(host: clock()) }
        } else if let time = timeBeingSet {
            // Applied even where the guest may no longer set the clock: it
            // started on a machine that allowed it, and a restored state
            // must not leave the clock frozen for ever.
            clockOffset = time.secondsSince1970 &- clock().secondsSince1970
            timeBeingSet = nil
        }
    }

    /// Sets one field of the guest's time to the register value `value`:
    /// into the frozen time while SET is on, else at once, as an offset from
    /// the injected clock.
    private func setTimeField(_ index: UInt8, _ value: UInt8) {
        let host = clock()
        var time = timeBeingSet ?? runningTime(host: host)
        let number = decode(value)
        switch index {
        case Index.seconds: time.second = number
        case Index.minutes: time.minute = number
        case Index.hours: time.hour = decodeHours(value)
        case Index.dayOfMonth: time.day = number
        case Index.month: time.month = number
        // Wrapping: the injected clock's year may be anything.
        case Index.year: time.year = time.year / 100 &* 100 &+ number
        default: time.year = number &* 100 &+ time.year % 100  // Index.century
        }
        if timeBeingSet != nil {
            timeBeingSet = time
        } else {
            clockOffset = time.secondsSince1970 &- host.secondsSince1970
        }
    }

    // MARK: Encoding

    private var binaryMode: Bool { ram[Int(Index.statusB)] & StatusB.dm != 0 }
    private var twentyFourHourMode: Bool { ram[Int(Index.statusB)] & StatusB.twentyFourHour != 0 }

    /// `value` reduced to two decimal digits, in BCD or binary as status B says.
    private func encode(_ value: Int) -> UInt8 {
        var twoDigits = value % 100
        if twoDigits < 0 { twoDigits += 100 }
        if binaryMode { return UInt8(twoDigits) }
        return UInt8(twoDigits / 10) << 4 | UInt8(twoDigits % 10)
    }

    /// The number a register value stands for, in BCD or binary as status B says.
    private func decode(_ value: UInt8) -> Int {
        if binaryMode { return Int(value) }
        return Int(value >> 4) * 10 + Int(value & 0x0f)
    }

    /// The hour (0-23) an hours-register value stands for, in either hour mode.
    private func decodeHours(_ value: UInt8) -> Int {
        if twentyFourHourMode { return decode(value) }
        // 12 is the first hour of each half: 12 AM is 0, 12 PM is 12.
        let hour = decode(value & ~Self.pm) % 12
        return value & Self.pm != 0 ? hour + 12 : hour
    }

    private func encodeHours(_ hour: Int) -> UInt8 {
        var hour = hour % 24
        if hour < 0 { hour += 24 }
        if twentyFourHourMode { return encode(hour) }
        // 12-hour mode counts 12, 1, ..., 11 in each half of the day.
        let clockHour = hour % 12 == 0 ? 12 : hour % 12
        return encode(clockHour) | (hour >= 12 ? Self.pm : 0)
    }

    // MARK: Saved state

    /// Everything about the RTC that shapes what the guest sees next, as a
    /// plain value for snapshots, clones and migration. The clock itself is
    /// the machine's wiring, not state: what is saved is how far the guest's
    /// time is from it, so a restored guest's clock keeps running from the
    /// restoring host's time with the same offset.
    public struct State: Codable, Hashable, Sendable {
        /// CMOS RAM, `ramSize` bytes: the alarms, status A, B and C's
        /// flags, the memory sizes and whatever else the guest stored. The
        /// bytes of the time registers and of status D are unused.
        public var ram: [UInt8]
        /// The byte the data port reaches, 0-127.
        public var index: UInt8
        /// Index port bit 7 as last written.
        public var nmiDisabled: Bool
        /// Seconds the guest's clock runs ahead of the injected clock.
        public var clockOffset: Int64
        /// The time the guest was writing with status B's SET bit on
        /// (which `ram` then has set), or nil. Fields are as written, not
        /// yet carried over: the date may be "February 31" mid-way.
        public var timeBeingSet: RTCDateTime?

        /// A state from its fields, taken as given; `restore(_:)` checks them.
        public init(ram: [UInt8], index: UInt8, nmiDisabled: Bool, clockOffset: Int64, timeBeingSet: RTCDateTime? = nil) {
            self.ram = ram
            self.index = index
            self.nmiDisabled = nmiDisabled
            self.clockOffset = clockOffset
            self.timeBeingSet = timeBeingSet
        }
    }

    /// The RTC's current state. Taking it changes nothing and does not read the clock.
    public var state: State {
        State(ram: ram, index: index, nmiDisabled: nmiDisabled, clockOffset: clockOffset, timeBeingSet: timeBeingSet)
    }

    /// Replaces the RTC's state with `state`. The RTC has no interrupt line
    /// to drive.
    ///
    /// A saved `clockOffset`, or a `timeBeingSet` that clearing SET will
    /// apply, is restored even if this RTC does not let the guest set the
    /// clock: the guest set it on the machine it came from.
    ///
    /// - Throws: `DeviceStateError` naming the first field the RTC could not
    ///   hold, without changing anything.
    public func restore(_ state: State) throws(DeviceStateError) {
        guard state.ram.count == Self.ramSize else {
            throw DeviceStateError(
                device: "CMOSRTC", field: "ram", problem: .wrongLength(count: state.ram.count, expected: Self.ramSize))
        }
        guard state.index & ~Self.indexMask == 0 else {
            throw DeviceStateError(
                device: "CMOSRTC", field: "index", problem: .outOfRange(value: Int(state.index), valid: 0...Self.ramSize - 1))
        }
        if state.timeBeingSet != nil && state.ram[Int(Index.statusB)] & StatusB.set == 0 {
            // Nothing would ever apply the frozen time: the guest clears a SET bit that is not set.
            throw DeviceStateError(
                device: "CMOSRTC", field: "timeBeingSet",
                problem: .inconsistent(detail: "is present, but status B (ram[11]) has SET (bit 7) clear"))
        }
        for (index, byte) in state.ram.enumerated() { ram[index] = byte }
        index = state.index
        nmiDisabled = state.nmiDisabled
        clockOffset = state.clockOffset
        timeBeingSet = state.timeBeingSet
    }

    // MARK: Memory size

    private func storeMemorySize(_ memorySize: UInt64, lowMemoryLimit: UInt64) {
        let kiB: UInt64 = 1024
        let miB = 1024 * kiB
        let low = min(memorySize, lowMemoryLimit, 4 << 30)
        let high = memorySize - low
        storeLittleEndian(min(low / kiB, 640), at: Index.baseMemoryKiB, bytes: 2)
        let extended = min(low > miB ? (low - miB) / kiB : 0, 0xffff)
        storeLittleEndian(extended, at: Index.extendedMemoryKiB, bytes: 2)
        storeLittleEndian(extended, at: Index.extendedMemoryKiBCopy, bytes: 2)
        let above16MiB = min(low > 16 * miB ? (low - 16 * miB) / (64 * kiB) : 0, 0xffff)
        storeLittleEndian(above16MiB, at: Index.memoryAbove16MiB, bytes: 2)
        storeLittleEndian(min(high / (64 * kiB), 0xff_ffff), at: Index.memoryAbove4GiB, bytes: 3)
    }

    private func storeLittleEndian(_ value: UInt64, at index: UInt8, bytes: Int) {
        for byte in 0..<bytes {
            ram[Int(index) + byte] = UInt8(truncatingIfNeeded: value >> (UInt64(byte) * 8))
        }
    }
}
