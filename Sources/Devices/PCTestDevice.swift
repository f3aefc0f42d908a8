import VMCore

/// QEMU's `pc-testdev`, the ISA device kvm-unit-tests' x86 library drives
/// when the environment says `TEST_DEVICE=1`; swiftvmm plugs it in only with
/// `--test-devices`, as QEMU only with `-device pc-testdev`.
///
/// Three windows, each its own bus device (`ioPort`, `interruptLines`, `memory`):
///
/// | where | what |
/// | --- | --- |
/// | ports 0xe0-0xe3 | a 32-bit scratch register: a write of 1, 2 or 4 bytes at offset `o` replaces bytes `o`..., a read returns them |
/// | ports 0xe4-0xe7 | "flush page": QEMU unmaps and remaps the page written; swiftvmm has nothing cached to flush, so writes are accepted and ignored |
/// | ports 0x2000-0x2017 | ISA interrupt lines 0-23: writing `v` to port 0x2000 + n sets line n's level to `v != 0` |
/// | MMIO 0xff000000, 64 KiB | plain memory behind MMIO exits, for the emulator's MMIO tests |
public final class PCTestDevice {
    /// Where the windows sit, as QEMU puts them.
    public static let ioPortBase: UInt16 = 0xe0
    public static let ioPortCount: UInt16 = 8
    public static let interruptLineBase: UInt16 = 0x2000
    public static let interruptLineCount: UInt16 = 24
    public static let memoryBase = GuestAddress(0xff00_0000)
    public static let memorySize: UInt64 = 0x1_0000

    /// Ports 0xe0-0xe7.
    public let ioPort: IOPort
    /// Ports 0x2000-0x2017.
    public let interruptLines: InterruptLines
    /// The 64 KiB MMIO window.
    public let memory: Memory

    /// A test device raising `lines[n]` when the guest sets line n (missing lines are ignored).
    public init(lines: [Int: any InterruptLine]) {
        ioPort = IOPort()
        interruptLines = InterruptLines(lines: lines)
        memory = Memory()
    }

    /// The scratch register and the flush-page port.
    public final class IOPort: PortIODevice {
        /// The scratch register's value.
        public private(set) var data: UInt32 = 0

        public func read(offset: UInt16, size: Int) -> UInt64 {
            guard offset < 4 else { return AccessWidth.mask(size: size) }
            return (UInt64(data) >> (UInt64(offset) * 8)) & AccessWidth.mask(size: size)
        }

        public func write(offset: UInt16, size: Int, value: UInt64) -> DeviceRequest? {
            guard offset < 4 else { return nil }  // flush page: nothing to flush
            let shift = UInt64(offset) * 8
            let mask = (AccessWidth.mask(size: size) << shift) & 0xffff_ffff
            data = UInt32((UInt64(data) & ~mask) | ((value << shift) & mask))
            return nil
        }
    }

    /// One port per ISA interrupt line.
    public final class InterruptLines: PortIODevice {
        private let lines: [Int: any InterruptLine]

        init(lines: [Int: any InterruptLine]) { self.lines = lines }

        /// Reads return all ones: QEMU's window is write-only.
        public func read(offset: UInt16, size: Int) -> UInt64 { AccessWidth.mask(size: size) }

        public func write(offset: UInt16, size: Int, value: UInt64) -> DeviceRequest? {
            lines[Int(offset)]?.setLevel(value & AccessWidth.mask(size: size) != 0)
            return nil
        }
    }

    /// 64 KiB of memory reached only through MMIO exits.
    public final class Memory: MMIODevice {
        private var bytes = [UInt8](repeating: 0, count: Int(PCTestDevice.memorySize))

        /// The byte indexes of an access that lie inside the window (none for a bad size or offset).
        static func bytes(size: Int, offset: UInt64) -> Range<Int> {
            guard offset < PCTestDevice.memorySize else { return 0..<0 }
            return 0..<Int(min(UInt64(max(0, min(size, 8))), PCTestDevice.memorySize - offset))
        }

        public func read(offset: UInt64, size: Int) -> UInt64 {
            var value: UInt64 = 0
            for i in Self.bytes(size: size, offset: offset) {
                value |= UInt64(bytes[Int(offset) + i]) << (UInt64(i) * 8)
            }
            return value
        }

        public func write(offset: UInt64, size: Int, value: UInt64) -> DeviceRequest? {
            for i in Self.bytes(size: size, offset: offset) {
                bytes[Int(offset) + i] = UInt8(truncatingIfNeeded: value >> (UInt64(i) * 8))
            }
            return nil
        }
    }
}
