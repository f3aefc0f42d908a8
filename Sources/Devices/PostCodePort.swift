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
