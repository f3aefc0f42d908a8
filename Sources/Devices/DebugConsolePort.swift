import VMCore

/// QEMU's ISA debug console ("debugcon", port 0xe9 on x86, Bochs's "port
/// e9 hack"): a write-only console with no registers, status or interrupts.
///
/// Each byte written goes to the `SerialOutput` unchanged, so firmware
/// (SeaBIOS, OVMF debug builds) and hobby kernels can print with one `out`
/// and no UART setup. A wider `out` still puts its character on the low
/// byte lines, so only that byte is sent.
///
/// Reads return 0xe9, as QEMU's and Bochs's device do, so a guest can tell
/// the console is present before using it; bytes above the first read as
/// all ones because the device decodes a single port. Offsets other than 0,
/// if registered, read all ones and ignore writes.
public final class DebugConsolePort: PortIODevice {
    /// The one port the console takes.
    public static let portCount: UInt16 = 1
    /// What a read returns: the port's own number, QEMU's presence signature.
    public static let readBackValue: UInt8 = 0xe9

    private let output: any SerialOutput

    /// A debug console that writes to `output`.
    public init(output: any SerialOutput) {
        self.output = output
    }

    public func read(offset: UInt16, size: Int) -> UInt64 {
        let mask = AccessWidth.mask(size: size)
        guard offset == 0 else { return mask }
        return (~0xff | UInt64(Self.readBackValue)) & mask
    }

    public func write(offset: UInt16, size: Int, value: UInt64) -> DeviceRequest? {
        guard offset == 0, size > 0 else { return nil }
        output.write(UInt8(truncatingIfNeeded: value))
        return nil
    }
}
