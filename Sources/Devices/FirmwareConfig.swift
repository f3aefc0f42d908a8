import VMCore

/// QEMU's firmware configuration interface ("fw_cfg") as a PC has it: a
/// 16-bit selector register at port 0x510 and an 8-bit data register at 0x511
/// (QEMU's docs/specs/fw_cfg.rst).
///
/// Writing a key to the selector chooses an item and rewinds it; each read of
/// the data register returns the item's next byte, and 0 once it is used up.
/// Keys nobody provides are items of length 0, so they read as zeros.
/// The selector's bit 14 (write channel) is ignored, as since QEMU 2.4, and
/// so are writes to the data register; bit 15 selects the architecture-specific
/// items, which this device does not have. The DMA interface (port 0x514) is
/// not offered, and `FW_CFG_ID` says so (bit 1 clear).
///
/// Byte order is the specification's: the numeric items (`FW_CFG_ID`,
/// `FW_CFG_RAM_SIZE`, the CPU counts, `FW_CFG_CMDLINE_SIZE`) are little-endian,
/// the file directory's fields big-endian, strings as they are.
///
/// Port offsets: 0 is the selector (a 16-bit write selects; a byte write there
/// is a data write, ignored), 1 the data register. The two ports form one
/// register pair that QEMU does not decode separately for reads, so a read at
/// either offset returns data; a read `size` bytes wide returns that many
/// consecutive bytes, the first in the lowest byte (like `memcpy`).
public final class FirmwareConfig: PortIODevice {
    /// Selector and data.
    public static let portCount: UInt16 = 2

    /// Selector keys (QEMU's include/standard-headers/linux/qemu_fw_cfg.h).
    public enum Key {
        /// "QEMU".
        public static let signature: UInt16 = 0x0000
        /// u32 LE feature bitmap: bit 0 traditional interface, bit 1 DMA.
        public static let id: UInt16 = 0x0001
        /// u64 LE guest RAM in bytes.
        public static let ramSize: UInt16 = 0x0003
        /// u16 LE number of CPUs at boot.
        public static let cpuCount: UInt16 = 0x0005
        /// u16 LE highest number of CPUs the machine may have.
        public static let maxCPUCount: UInt16 = 0x000f
        /// u32 LE length of the kernel command line, its NUL included.
        public static let commandLineSize: UInt16 = 0x0014
        /// The kernel command line, NUL-terminated.
        public static let commandLineData: UInt16 = 0x0015
        /// The file directory: u32 BE count, then one 64-byte entry per file.
        public static let fileDirectory: UInt16 = 0x0019
        /// The first key a file gets; the directory says which file has which.
        public static let firstFile: UInt16 = 0x0020
    }

    /// The signature item.
    public static let signature: [UInt8] = Array("QEMU".utf8)
    /// `FW_CFG_ID` bit 0: the selector/data register interface.
    public static let traditionalInterface: UInt32 = 1 << 0
    /// Bit 14 of a selector: a write-mode selection (writes are ignored anyway).
    public static let writeChannel: UInt16 = 1 << 14
    /// Bit 15 of a selector: an architecture-specific item.
    public static let architectureLocal: UInt16 = 1 << 15
    /// A directory entry: u32 size, u16 select, u16 reserved, 56 bytes of NUL-terminated name.
    public static let directoryEntrySize = 64
    /// The longest file name, leaving room for the NUL.
    public static let maximumFileNameLength = 55

    /// A named item listed in the file directory.
    public struct File: Hashable, Sendable {
        /// E.g. `etc/e820`: printable ASCII of at most `maximumFileNameLength` bytes.
        public var name: String
        public var bytes: [UInt8]

        public init(name: String, bytes: [UInt8]) {
            self.name = name
            self.bytes = bytes
        }
    }

    /// The key last written to the selector.
    public private(set) var selector: UInt16 = 0
    private let items: [UInt16: [UInt8]]
    private var current: [UInt8]
    private var position = 0

    /// A device offering the signature, the interface id, `ramSize`,
    /// `cpuCount` (at boot and at most: this machine has no CPU hot-plug), the
    /// kernel command line when there is one, and `files` sorted by name in
    /// the directory, at keys 0x20 and up.
    ///
    /// The files come from the VMM, never from the guest: a name that is not
    /// printable ASCII of at most 55 bytes, or two files with one name, is a bug.
    public init(ramSize: UInt64, cpuCount: UInt16, commandLine: [UInt8]? = nil, files: [File] = []) {
        var items: [UInt16: [UInt8]] = [
            Key.signature: Self.signature,
            Key.id: littleEndian(Self.traditionalInterface),
            Key.ramSize: littleEndian(ramSize),
            Key.cpuCount: littleEndian(cpuCount),
            Key.maxCPUCount: littleEndian(cpuCount),
        ]
        if let commandLine {
            items[Key.commandLineSize] = littleEndian(UInt32(truncatingIfNeeded: commandLine.count + 1))
            items[Key.commandLineData] = commandLine + [0]
        }
        let sorted = files.sorted { $0.name < $1.name }
        precondition(Set(sorted.map(\.name)).count == sorted.count, "fw_cfg file names must be unique")
        var directory = bigEndian(UInt32(sorted.count))
        for (i, file) in sorted.enumerated() {
            let name = Array(file.name.utf8)
            precondition(
                !name.isEmpty && name.count <= Self.maximumFileNameLength && name.allSatisfy { (0x21...0x7e).contains($0) },
                "fw_cfg file name '\(file.name)' must be 1-55 bytes of printable ASCII")
            let key = Key.firstFile + UInt16(i)
            items[key] = file.bytes
            directory += bigEndian(UInt32(truncatingIfNeeded: file.bytes.count)) + bigEndian(key) + [0, 0]
            directory += name + [UInt8](repeating: 0, count: 56 - name.count)
        }
        items[Key.fileDirectory] = directory
        self.items = items
        current = items[Key.signature] ?? []
    }

    // MARK: Saved state

    /// Where the guest is in its reading, as a plain value for snapshots,
    /// clones and migration. The items are not state: they are rebuilt from
    /// the machine's configuration, and a restored device must be made with
    /// the same one, so a guest that was mid-way through an item reads on
    /// from the same byte.
    public struct State: Codable, Hashable, Sendable {
        /// The key last written to the selector, bits 14 and 15 included.
        public var selector: UInt16
        /// How many bytes of the selected item the guest has read: 0 up to
        /// the item's length (reads past the end leave it there).
        public var offset: Int

        /// A state from its fields, taken as given; `restore(_:)` checks them.
        public init(selector: UInt16, offset: Int) {
            self.selector = selector
            self.offset = offset
        }
    }

    /// The device's current state. Taking it changes nothing.
    public var state: State { State(selector: selector, offset: position) }

    /// Selects `state.selector` and moves to `state.offset` within its item.
    /// fw_cfg has no interrupt line to drive.
    ///
    /// - Throws: `DeviceStateError` if the offset lies outside the item this
    ///   device has at that key (the snapshot came from a differently
    ///   configured machine, or is corrupt), without changing anything.
    public func restore(_ state: State) throws(DeviceStateError) {
        let selected = item(state.selector)
        guard (0...selected.count).contains(state.offset) else {
            throw DeviceStateError(
                device: "FirmwareConfig", field: "offset", problem: .outOfRange(value: state.offset, valid: 0...selected.count))
        }
        selector = state.selector
        current = selected
        position = state.offset
    }

    /// The item behind `key` as the guest would read it (empty if there is none).
    public func item(_ key: UInt16) -> [UInt8] { items[key & ~Self.writeChannel] ?? [] }

    public func read(offset: UInt16, size: Int) -> UInt64 {
        guard offset < Self.portCount, (1...8).contains(size) else { return AccessWidth.mask(size: size) }
        var value: UInt64 = 0
        for i in 0..<size {
            let byte = position < current.count ? current[position] : 0
            if position < current.count { position += 1 }
            value |= UInt64(byte) << (8 * UInt64(i))
        }
        return value
    }

    public func write(offset: UInt16, size: Int, value: UInt64) -> DeviceRequest? {
        // Only a 16-bit write to the selector port selects; data writes are ignored (QEMU 2.4 and later).
        guard offset == 0, size == 2 else { return nil }
        selector = UInt16(truncatingIfNeeded: value)
        current = item(selector)
        position = 0
        return nil
    }
}

private func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    (0..<T.bitWidth / 8).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
}

private func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] { littleEndian(value).reversed() }
