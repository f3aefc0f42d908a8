import VMCore

/// The POST diagnostic port (0x80 on a PC): firmware writes a progress code
/// to it, and Linux writes to it only to waste time between slow accesses.
///
/// Reads return the last code written, as the latch on a POST card or in
/// many chipsets does, so a guest can read back its own progress; before the
/// first write they return 0xff, the value of an undriven bus. Bytes above
/// the first read as all ones because this device decodes a single port.
public final class PostCodePort: PortIODevice {
    /// The most recent code written, or `nil` if the guest has written none.
    public private(set) var lastCode: UInt8?
    /// How many codes have been written.
    public private(set) var writeCount = 0

    /// A port that has seen no codes.
    public init() {}

    /// The latch, as a plain value for snapshots, clones and migration.
    /// `writeCount` is a statistic of this run, not state, and is not saved.
    public struct State: Codable, Hashable, Sendable {
        /// The most recent code written, or nil if the guest has written none.
        public var lastCode: UInt8?

        /// A state from its field.
        public init(lastCode: UInt8?) {
            self.lastCode = lastCode
        }
    }

    /// The current state. Taking it changes nothing.
    public var state: State { State(lastCode: lastCode) }

    /// Replaces the latch with the saved one. Every byte is a code the guest
    /// could have written, so this never throws; it is declared `throws` to
    /// match the other devices.
    public func restore(_ state: State) throws(DeviceStateError) {
        lastCode = state.lastCode
    }

    public func read(offset: UInt16, size: Int) -> UInt64 {
        (~0xff | UInt64(lastCode ?? 0xff)) & AccessWidth.mask(size: size)
    }

    public func write(offset: UInt16, size: Int, value: UInt64) -> DeviceRequest? {
        // A wider `out` still puts the code on the low byte lines.
        lastCode = UInt8(truncatingIfNeeded: value)
        writeCount &+= 1
        return nil
    }
}
