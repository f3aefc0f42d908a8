/// The I/O ports swiftvmm's PC devices sit at, with their IRQs.
///
/// The addresses are the IBM PC's, which every x86 guest (and QEMU) assumes.
public enum PortMap {
    /// COM1, the first 16550A UART: 8 ports, IRQ 4.
    public static let com1: (base: UInt16, length: UInt16, irq: UInt32) = (0x3f8, 8, 4)
    /// POST-code diagnostic port: firmware writes progress codes here; reads are meaningless.
    public static let postCode: (base: UInt16, length: UInt16) = (0x80, 1)
    /// QEMU's isa-debug-exit with iosize 4: a write of v ends the VM with status v & 0xff.
    public static let debugExit: (base: UInt16, length: UInt16) = (0xf4, 4)
}
