import VMCore

/// The PM1a event and control register blocks of fixed-hardware ACPI
/// (ACPI 6.5, 4.8.3.1 and 4.8.3.2), as a FADT's PM1a_EVT_BLK and
/// PM1a_CNT_BLK advertise them: the way a guest that reads those blocks
/// enters S3 (suspend to RAM) or S5 (soft off), and learns why it woke.
///
/// Register it with length `portCount`; the FADT must then advertise the
/// event block at base + 0 (`PM1_EVT_LEN` 4) and the control block at
/// base + 4 (`PM1_CNT_LEN` 2):
///
/// | offset | register    | read                           | write                                  |
/// |--------|-------------|--------------------------------|----------------------------------------|
/// | 0-1    | PM1_STS     | WAK_STS (15), RTC_STS (10)     | 1s clear the bits                      |
/// | 2-3    | PM1_EN      | as written (RTC_EN is bit 10)  | the enable bits                        |
/// | 4-5    | PM1_CNT     | SCI_EN (0, always set), SLP_TYP (12-10) | SLP_EN (13) enters the state in SLP_TYP |
///
/// Accesses may be 1, 2 or 4 bytes wide at any offset and cover consecutive
/// bytes, low byte first; bytes past offset 5 read as all ones.
///
/// Entering `suspendSleepType` asks the machine to suspend
/// (`DeviceRequest.suspend`); the machine calls `wake(byAlarm:)` when it
/// resumes the guest. Entering `softOffSleepType` powers off. Any other
/// state is not carried out: the guest "wakes" at once with WAK_STS set, as
/// `ACPISleepControl` does.
public final class ACPIPM1Registers: PortIODevice {
    /// The ports the two blocks take: 4 of events, then 2 of control.
    public static let portCount: UInt16 = 6
    /// Where the control block starts, from the device's base.
    public static let controlOffset: UInt16 = 4

    /// PM1_STS and PM1_EN bits.
    public enum Event {
        /// WAK_STS: the platform woke from a sleep state.
        public static let wakeStatus: UInt16 = 1 << 15
        /// RTC_STS / RTC_EN: the RTC alarm (and, enabled, a wake by it).
        public static let rtc: UInt16 = 1 << 10
    }

    /// PM1_CNT bits.
    private enum Control {
        /// SCI_EN: the platform is in ACPI mode. Always set: there is no legacy mode.
        static let sciEnable: UInt16 = 1 << 0
        static let sleepTypeMask: UInt16 = 0b111 << 10
        static let sleepTypeShift: UInt16 = 10
        /// SLP_EN: enter the state in SLP_TYP. Write-only; reads as 0.
        static let sleepEnable: UInt16 = 1 << 13
        /// The bits a write keeps (SLP_EN acts and is not stored).
        static let stored: UInt16 = 0b0001_1111_1111_1111 & ~sleepEnable
    }

    /// The SLP_TYP value of S3, as `\_S3_` gives it.
    public let suspendSleepType: UInt8
    /// The SLP_TYP value of S5, as `\_S5_` gives it.
    public let softOffSleepType: UInt8
    /// PM1_STS.
    public private(set) var status: UInt16 = 0
    /// PM1_EN.
    public private(set) var enable: UInt16 = 0
    /// PM1_CNT as last written, SLP_EN cleared and SCI_EN forced on.
    public private(set) var control: UInt16 = Control.sciEnable

    /// PM1 blocks for a DSDT whose `\_S3_` is `suspendSleepType` and whose
    /// `\_S5_` is `softOffSleepType` (only bits 2-0 of each count).
    public init(suspendSleepType: UInt8 = 1, softOffSleepType: UInt8 = 5) {
        self.suspendSleepType = suspendSleepType & 0b111
        self.softOffSleepType = softOffSleepType & 0b111
    }

    /// The guest was woken from S3: WAK_STS is set, and RTC_STS too when the
    /// RTC alarm woke it.
    public func wake(byAlarm: Bool) {
        status |= Event.wakeStatus | (byAlarm ? Event.rtc : 0)
    }

    /// Whether the guest enabled the RTC alarm as a wake event (PM1_EN.RTC_EN).
    public var rtcWakeEnabled: Bool { enable & Event.rtc != 0 }

    // MARK: Saved state

    /// The three registers, for snapshots; the sleep types are configuration.
    public struct State: Codable, Hashable, Sendable {
        public var status: UInt16
        public var enable: UInt16
        public var control: UInt16

        /// A state from its fields, taken as given; `restore(_:)` checks them.
        public init(status: UInt16, enable: UInt16, control: UInt16) {
            self.status = status
            self.enable = enable
            self.control = control
        }
    }

    /// The registers' current state. Taking it changes nothing.
    public var state: State { State(status: status, enable: enable, control: control) }

    /// Replaces the registers with `state`.
    ///
    /// - Throws: `DeviceStateError` if `control` has SLP_EN or bits above it
    ///   set, or SCI_EN clear, without changing anything.
    public func restore(_ state: State) throws(DeviceStateError) {
        guard state.control & ~Control.stored == 0, state.control & Control.sciEnable != 0 else {
            throw DeviceStateError(
                device: "ACPIPM1Registers", field: "control",
                problem: .inconsistent(detail: "\(state.control) must have SCI_EN (bit 0) set and bits 13-15 clear"))
        }
        status = state.status
        enable = state.enable
        control = state.control
    }

    // MARK: PortIODevice

    /// Reads `size` bytes from consecutive offsets, lowest first.
    public func read(offset: UInt16, size: Int) -> UInt64 {
        var value: UInt64 = 0
        for byte in 0..<min(max(size, 0), 8) {
            value |= UInt64(readByte(Int(offset) + byte)) << (UInt64(byte) * 8)
        }
        return value
    }

    /// Writes `size` bytes to consecutive offsets, lowest first. Returns
    /// `.suspend` when the guest enters S3 and `.powerOff` when it enters S5.
    public func write(offset: UInt16, size: Int, value: UInt64) -> DeviceRequest? {
        var request: DeviceRequest?
        var controlWritten = false
        for byte in 0..<min(max(size, 0), 8) {
            let byteValue = UInt16(UInt8(truncatingIfNeeded: value >> (UInt64(byte) * 8)))
            switch Int(offset) + byte {
            case 0: status &= ~byteValue
            case 1: status &= ~(byteValue << 8)
            case 2: enable = enable & 0xff00 | byteValue
            case 3: enable = enable & 0x00ff | byteValue << 8
            case 4:
                control = (control & 0xff00 | byteValue) & Control.stored | Control.sciEnable
            case 5:
                // SLP_EN is in this byte: act once the whole write is in.
                let written = control & 0x00ff | byteValue << 8
                control = written & Control.stored | Control.sciEnable
                if written & Control.sleepEnable != 0 { controlWritten = true }
            default: break
            }
        }
        if controlWritten { request = enterSleepState() }
        return request
    }

    private func readByte(_ offset: Int) -> UInt8 {
        switch offset {
        case 0: return UInt8(truncatingIfNeeded: status)
        case 1: return UInt8(truncatingIfNeeded: status >> 8)
        case 2: return UInt8(truncatingIfNeeded: enable)
        case 3: return UInt8(truncatingIfNeeded: enable >> 8)
        case 4: return UInt8(truncatingIfNeeded: control)
        case 5: return UInt8(truncatingIfNeeded: control >> 8)
        default: return 0xff
        }
    }

    private func enterSleepState() -> DeviceRequest? {
        let type = UInt8((control & Control.sleepTypeMask) >> Control.sleepTypeShift)
        if type == softOffSleepType { return .powerOff }
        if type == suspendSleepType { return .suspend }
        // Any other state: sleep and wake in the same instant.
        status |= Event.wakeStatus
        return nil
    }
}
