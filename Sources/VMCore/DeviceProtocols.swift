/// Something a device asks of the machine as a side effect of a guest write.
public enum DeviceRequest: Hashable, Sendable {
    /// End the VM with this status (the debug-exit port).
    case exit(status: UInt32)
    /// Reset the machine (keyboard-controller reset, reset register).
    case reset
    /// Power the machine off (ACPI S5).
    case powerOff
    /// Suspend the machine to RAM (ACPI S3): stop its vCPUs, keep RAM and
    /// devices, until a wake event resumes it at the FACS waking vector.
    case suspend
}

/// A device on the port-I/O bus.
///
/// Offsets are relative to the base the device was registered at, so a device
/// can sit at any address. Accesses are single: the bus splits string I/O.
/// Implementations know nothing about KVM and are tested with plain calls.
public protocol PortIODevice: AnyObject {
    /// A guest read of `size` (1, 2 or 4) bytes; the low `size` bytes of the result are used.
    func read(offset: UInt16, size: Int) -> UInt64
    /// A guest write of the low `size` bytes of `value`.
    func write(offset: UInt16, size: Int, value: UInt64) -> DeviceRequest?
}

/// A device on the MMIO bus. Offsets are relative to the registered base.
public protocol MMIODevice: AnyObject {
    /// A guest read of `size` (1 to 8) bytes.
    func read(offset: UInt64, size: Int) -> UInt64
    /// A guest write of the low `size` bytes of `value`.
    func write(offset: UInt64, size: Int, value: UInt64) -> DeviceRequest?
}

/// An interrupt request line a device drives (level-triggered, as on the ISA bus).
public protocol InterruptLine: AnyObject {
    func setLevel(_ high: Bool)
}
