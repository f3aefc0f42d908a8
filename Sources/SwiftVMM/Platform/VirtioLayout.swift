import VMCore

/// Where a PC's virtio-mmio transports go: one 4 KiB window each from
/// 0xd0000000 up (in the MMIO hole below 4 GiB, clear of RAM, which ends at
/// 3 GiB on a PC, and of the IOAPIC and LAPIC at 0xfec00000 and up), and one
/// interrupt line each from the ISA lines no PC device uses, edge-triggered
/// and active high, as both the DSDT and Linux's command-line syntax say.
///
/// The one allocator of windows and lines: devices never collide with each
/// other or with the platform's devices.
enum VirtioLayout {
    /// The first window.
    static let windowBase: UInt64 = 0xd000_0000
    /// The interrupt lines, in the order they are given out: the ISA lines
    /// the PC's devices leave free (0 PIT, 1 keyboard, 2 cascade, 3 COM2,
    /// 4 COM1, 8 RTC, 9 ACPI, 12 mouse, 13 FPU). Lines above 15 exist only
    /// on the IOAPIC and are not in the MP table, so a guest without ACPI
    /// could not find them; a machine has at most this many devices.
    static let interruptLines: [UInt32] = [5, 6, 7, 10, 11, 14, 15]

    /// The most virtio devices a machine can have.
    static var maximumDevices: Int { interruptLines.count }

    /// Device `index`'s window and line.
    struct Slot: Hashable, Sendable {
        var index: Int
        var base: GuestAddress
        var gsi: UInt32
    }

    /// The slots of `count` devices, or `nil` when there are more than
    /// `maximumDevices`. The first `reservedWindows` windows are left to
    /// other devices (Firecracker's boot timer takes the first one).
    static func slots(count: Int, reservedWindows: Int = 0) -> [Slot]? {
        guard count <= maximumDevices else { return nil }
        return (0..<count).map { index in
            Slot(
                index: index, base: GuestAddress(windowBase + UInt64(index + reservedWindows) * 0x1000),
                gsi: interruptLines[index])
        }
    }

    /// How Linux's `virtio_mmio` driver is told about the devices on its
    /// command line (`CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES`): `4K@ADDR:IRQ` each.
    static func kernelArguments(_ slots: [Slot]) -> String {
        slots.map { "virtio_mmio.device=4K@0x\(String($0.base.rawValue, radix: 16)):\($0.gsi)" }.joined(separator: " ")
    }
}
