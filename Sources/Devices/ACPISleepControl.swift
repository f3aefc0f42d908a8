import VMCore

/// The sleep control and sleep status registers of a hardware-reduced ACPI
/// platform (ACPI 6.5, 4.8.3.7 and 4.8.3.8), which the FADT's
/// SLEEP_CONTROL_REG and SLEEP_STATUS_REG point at: the way a guest powers off.
///
/// Register it with length `portCount`; the FADT must then advertise
/// control at base + 0 and status at base + 1, each 8 bits wide.
///
/// | offset | register      | read                  | write                               |
/// |--------|---------------|-----------------------|-------------------------------------|
/// | 0      | SLEEP_CONTROL | SLP_TYP of the last write | SLP_EN with SLP_TYP = S5 powers off |
/// | 1      | SLEEP_STATUS  | WAK_STS               | 1 in WAK_STS clears it              |
///
/// A wider access covers consecutive offsets, low byte first; bytes past
/// offset 1 read as all ones and ignore writes.
///
/// SLP_EN with SLP_TYP = `suspendSleepType` (when the DSDT offers `\_S3_`)
/// asks the machine to suspend to RAM (`DeviceRequest.suspend`); the machine
/// sets WAK_STS through `wake()` when it resumes the guest. A sleep request
/// for any other state is not carried out: the guest "wakes" at once, with
/// WAK_STS set, because Linux's `acpi_hw_extended_sleep` spins on WAK_STS
/// after writing SLP_EN and would otherwise hang.
public final class ACPISleepControl: PortIODevice {
    /// The ports the two registers take.
    public static let portCount: UInt16 = 2

    private enum Offset {
        static let control: UInt16 = 0
        static let status: UInt16 = 1
    }

    /// Sleep Control Register bits.
    private enum Control {
        /// SLP_TYPx, bits 4-2: the sleep state, as the DSDT's `\_Sx` package gives it.
        static let sleepTypeMask: UInt8 = 0b0001_1100
        static let sleepTypeShift: UInt8 = 2
        /// SLP_EN: enter the state in SLP_TYP. Write-only; reads as 0.
        static let sleepEnable: UInt8 = 0b0010_0000
    }

    /// Sleep Status Register bits.
    private enum Status {
        /// WAK_STS: the platform woke from a sleep state. Write 1 to clear.
        static let wakeStatus: UInt8 = 0b1000_0000
    }

    /// The SLP_TYP value that means S5 (soft off), bits 2-0: the value the
    /// DSDT's `\_S5` package gives the guest.
    public let softOffSleepType: UInt8
    /// SLP_TYP from the last write to the control register (bits 2-0).
    public private(set) var lastSleepType: UInt8 = 0
    /// Whether WAK_STS is set, after a wake from S3 or an ignored request to sleep.
    public private(set) var wakeStatus = false
    /// The SLP_TYP value that means S3 (suspend to RAM), or `nil` when the
    /// machine does not offer S3.
    public let suspendSleepType: UInt8?

    /// Sleep registers that power the machine off when the guest enters
    /// `softOffSleepType` (only its bits 2-0 count; 5 is what QEMU's and
    /// Firecracker's DSDTs give `\_S5`) and suspend it when it enters
    /// `suspendSleepType`, if given.
    public init(softOffSleepType: UInt8 = 5, suspendSleepType: UInt8? = nil) {
        let mask = Control.sleepTypeMask >> Control.sleepTypeShift
        self.softOffSleepType = softOffSleepType & mask
        self.suspendSleepType = suspendSleepType.map { $0 & mask }
    }

    /// The guest was woken from S3: WAK_STS is set.
    public func wake() { wakeStatus = true }

    // MARK: Saved state

    /// The two registers' contents, as a plain value for snapshots, clones
    /// and migration. `softOffSleepType` is configuration (it must match the
    /// DSDT), not state.
    public struct State: Codable, Hashable, Sendable {
        /// SLP_TYP from the last write to the control register, 0-7.
        public var lastSleepType: UInt8
        /// WAK_STS.
        public var wakeStatus: Bool

        /// A state from its fields, taken as given; `restore(_:)` checks them.
        public init(lastSleepType: UInt8, wakeStatus: Bool) {
            self.lastSleepType = lastSleepType
            self.wakeStatus = wakeStatus
        }
    }

    /// The registers' current state. Taking it changes nothing.
    public var state: State { State(lastSleepType: lastSleepType, wakeStatus: wakeStatus) }

    /// Replaces the registers' contents with `state`. There is no interrupt line to drive.
    ///
    /// - Throws: `DeviceStateError` if `lastSleepType` does not fit SLP_TYP's
    ///   three bits, without changing anything.
    public func restore(_ state: State) throws(DeviceStateError) {
        let maximum = Control.sleepTypeMask >> Control.sleepTypeShift
        guard state.lastSleepType <= maximum else {
            throw DeviceStateError(
                device: "ACPISleepControl", field: "lastSleepType",
                problem: .outOfRange(value: Int(state.lastSleepType), valid: 0...Int(maximum)))
        }
        lastSleepType = state.lastSleepType
        wakeStatus = state.wakeStatus
    }

    /// Reads `size` bytes from consecutive offsets, lowest first.
    public func read(offset: UInt16, size: Int) -> UInt64 {
        var value: UInt64 = 0
        for byte in 0..<min(max(size, 0), 8) {
            let registerValue: UInt8
            switch Int(offset) + byte {
            case Int(Offset.control): registerValue = lastSleepType << Control.sleepTypeShift
            case Int(Offset.status): registerValue = wakeStatus ? Status.wakeStatus : 0
            default: registerValue = 0xff
            }
            value |= UInt64(registerValue) << (UInt64(byte) * 8)
        }
        return value
    }

    /// Writes `size` bytes to consecutive offsets, lowest first. Returns
    /// `.powerOff` when the guest enters S5 and `.suspend` when it enters S3.
    public func write(offset: UInt16, size: Int, value: UInt64) -> DeviceRequest? {
        var request: DeviceRequest?
        for byte in 0..<min(max(size, 0), 8) {
            let byteValue = UInt8(truncatingIfNeeded: value >> (UInt64(byte) * 8))
            switch Int(offset) + byte {
            case Int(Offset.control):
                if let result = writeControl(byteValue), request == nil { request = result }
            case Int(Offset.status):
                if byteValue & Status.wakeStatus != 0 { wakeStatus = false }
            default:
                break
            }
        }
        return request
    }

    private func writeControl(_ value: UInt8) -> DeviceRequest? {
        lastSleepType = (value & Control.sleepTypeMask) >> Control.sleepTypeShift
        guard value & Control.sleepEnable != 0 else { return nil }
        if lastSleepType == softOffSleepType { return .powerOff }
        if lastSleepType == suspendSleepType { return .suspend }
        // Any other state: sleep and wake in the same instant; see the type's comment.
        wakeStatus = true
        return nil
    }
}

/// The ACPI reset register (ACPI 6.5, 4.8.3.6) on a port of its own: the
/// FADT's RESET_REG and RESET_VALUE, which Linux writes for `reboot=a`
/// (its default with ACPI) and many firmwares use to reboot.
///
/// One port, 8 bits wide: writing the FADT's RESET_VALUE resets the machine;
/// any other value is ignored, as is anything at another offset. Reads return
/// 0, since the register is write-only.
///
/// It has no saved state: a write acts at once and leaves nothing behind,
/// and `resetValue` is configuration (it must match the FADT).
public final class ACPIResetRegister: PortIODevice {
    /// The one port the register takes.
    public static let portCount: UInt16 = 1

    /// The value that resets the machine: the FADT's RESET_VALUE.
    public let resetValue: UInt8

    /// A reset register that resets on `resetValue`. The default, 0x06, is
    /// the value PCs write to the chipset's reset control register at 0xcf9
    /// (SYS_RST | RST_CPU), the one FADTs commonly advertise.
    public init(resetValue: UInt8 = 0x06) {
        self.resetValue = resetValue
    }

    public func read(offset: UInt16, size: Int) -> UInt64 {
        // The register reads 0; bytes past it are undriven.
        offset == 0 ? ~0xff & AccessWidth.mask(size: size) : AccessWidth.mask(size: size)
    }

    public func write(offset: UInt16, size: Int, value: UInt64) -> DeviceRequest? {
        // A wider write still puts the register's byte on the low lines.
        guard offset == 0, size > 0, UInt8(truncatingIfNeeded: value) == resetValue else { return nil }
        return .reset
    }
}
