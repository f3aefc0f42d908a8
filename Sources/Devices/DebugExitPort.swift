import VMCore

/// A port a test guest writes to in order to end the VM with a status, like
/// QEMU's `isa-debug-exit` device (usually at 0xf4 with `iosize=4`).
///
/// A 1-, 2- or 4-byte write of `v` at any offset asks for
/// `.exit(status: v)`; the machine turns that into the process status
/// (`v & 0xff`). QEMU would exit with `(v << 1) | 1` instead; we keep the
/// guest's value unchanged so that a guest writing 0 means success.
/// Reads return all ones, as nothing drives the bus on a read.
public final class DebugExitPort: PortIODevice {
    /// The ports QEMU's device decodes with `iosize=4`: one 32-bit write.
    public static let portCount: UInt16 = 4

    /// A debug-exit port.
    public init() {}

    public func read(offset: UInt16, size: Int) -> UInt64 {
        AccessWidth.mask(size: size)
    }

    public func write(offset: UInt16, size: Int, value: UInt64) -> DeviceRequest? {
        .exit(status: UInt32(truncatingIfNeeded: value & AccessWidth.mask(size: min(size, 4))))
    }
}
