/// The I/O ports swiftvmm's PC devices sit at, with their IRQs.
///
/// The addresses are the IBM PC's, which every x86 guest (and QEMU) assumes.
public enum PortMap {
    /// COM1, the first 16550A UART: 8 ports, IRQ 4.
    public static let com1: (base: UInt16, length: UInt16, irq: UInt32) = (0x3f8, 8, 4)
    /// COM2, the second 16550A UART: 8 ports, IRQ 3.
    public static let com2: (base: UInt16, length: UInt16, irq: UInt32) = (0x2f8, 8, 3)
    /// QEMU's debugcon (Bochs's "port e9 hack"): each byte written is console output.
    public static let debugConsole: (base: UInt16, length: UInt16) = (0xe9, 1)
    /// QEMU's fw_cfg: selector at 0x510 (16-bit write), data at 0x511 (byte reads).
    public static let firmwareConfig: (base: UInt16, length: UInt16) = (0x510, 2)
    /// POST-code diagnostic port: firmware writes progress codes here; reads are meaningless.
    public static let postCode: (base: UInt16, length: UInt16) = (0x80, 1)
    /// QEMU's isa-debug-exit with iosize 4: a write of v ends the VM with status v & 0xff.
    public static let debugExit: (base: UInt16, length: UInt16) = (0xf4, 4)
    /// The i8042 keyboard controller: data at 0x60, status/command at 0x64; IRQ 1 (keyboard) and 12 (aux).
    public static let i8042Data: UInt16 = 0x60
    public static let i8042StatusCommand: UInt16 = 0x64
    public static let i8042KeyboardIRQ: UInt32 = 1
    public static let i8042AuxIRQ: UInt32 = 12
    /// The CMOS RAM and real-time clock: index at 0x70, data at 0x71.
    public static let cmos: (base: UInt16, length: UInt16) = (0x70, 2)
    /// PCI configuration mechanism #1: CONFIG_ADDRESS at 0xcf8, CONFIG_DATA at 0xcfc.
    public static let pciConfig: (base: UInt16, length: UInt16) = (0xcf8, 8)
    /// The hardware-reduced ACPI sleep control (0x600) and status (0x601) registers
    /// and the reset register (0x602), as the FADT advertises them.
    public static let acpiSleep: (base: UInt16, length: UInt16) = (0x600, 2)
    public static let acpiReset: (base: UInt16, length: UInt16) = (0x602, 1)
    /// The PM1a event block (0x604-0x607) and control block (0x608-0x609)
    /// the FADT advertises for S3 (`ACPIPM1Registers`).
    public static let acpiPM1: (base: UInt16, length: UInt16) = (0x604, 6)
}
