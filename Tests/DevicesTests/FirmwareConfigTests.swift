import Devices
import Testing
import VMCore

/// fw_cfg register by register, through a port bus at 0x510 as a guest sees it.
@Suite struct FirmwareConfigTests {
    let bus = PortIOBus()
    let device: FirmwareConfig
    static let e820 = (0..<40).map { UInt8($0) }
    static let reservedEnd: [UInt8] = [0, 0, 0, 0x40, 0, 0, 0, 0]

    init() throws {
        device = FirmwareConfig(
            ramSize: 0x1_2345_6000, cpuCount: 3, commandLine: Array("console=ttyS0 x".utf8),
            files: [
                // Given out of order: the directory sorts by name.
                FirmwareConfig.File(name: "etc/reserved-memory-end", bytes: Self.reservedEnd),
                FirmwareConfig.File(name: "etc/e820", bytes: Self.e820),
            ])
        try bus.register(device, at: 0x510, length: FirmwareConfig.portCount)
    }

    func select(_ key: UInt16) {
        #expect(bus.write(port: 0x510, size: 2, value: UInt64(key)).unclaimed == .no)
    }

    func readData(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: bus.read(port: 0x511, size: 1).value) }
    }

    func integer(_ key: UInt16, bytes: Int) -> UInt64 {
        select(key)
        return readData(bytes).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    @Test func theSignatureIsQEMU() {
        select(0x0000)
        #expect(readData(4) == Array("QEMU".utf8))
        #expect(readData(2) == [0, 0], "past the end an item reads as zeros")
    }

    @Test func theIdOffersTheTraditionalInterfaceOnly() {
        select(0x0001)
        #expect(readData(4) == [1, 0, 0, 0], "bit 0 set, bit 1 (DMA) clear, little-endian")
    }

    @Test func numbersAreLittleEndian() {
        select(0x0003)
        #expect(readData(8) == [0x00, 0x60, 0x45, 0x23, 0x01, 0, 0, 0])
        #expect(integer(0x0005, bytes: 2) == 3)
        #expect(integer(0x000f, bytes: 2) == 3)
        #expect(integer(0x0014, bytes: 4) == 16, "the command line's length with its NUL")
    }

    @Test func theCommandLineIsNULTerminated() {
        select(0x0015)
        #expect(readData(17) == Array("console=ttyS0 x".utf8) + [0, 0])
    }

    @Test func theFileDirectoryIsBigEndianAndSortedByName() {
        select(0x0019)
        #expect(readData(4) == [0, 0, 0, 2])
        let first = readData(64)
        #expect(Array(first[0..<4]) == [0, 0, 0, 40], "size, big-endian")
        #expect(Array(first[4..<6]) == [0x00, 0x20], "select, big-endian")
        #expect(Array(first[6..<8]) == [0, 0])
        #expect(Array(first[8..<16]) == Array("etc/e820".utf8))
        #expect(first[16...].allSatisfy { $0 == 0 })
        let second = readData(64)
        #expect(Array(second[0..<8]) == [0, 0, 0, 8, 0x00, 0x21, 0, 0])
        #expect(Array(second[8..<31]) == Array("etc/reserved-memory-end".utf8))
        #expect(readData(4) == [0, 0, 0, 0])
        select(0x0020)
        #expect(readData(40) == Self.e820)
        select(0x0021)
        #expect(readData(8) == Self.reservedEnd)
    }

    @Test func unknownKeysReadAsZeros() {
        for key: UInt16 in [0x0002, 0x0013, 0x0022, 0x3fff, 0x8000, 0x8003, 0xffff] {
            select(key)
            #expect(readData(8) == [UInt8](repeating: 0, count: 8), "key \(hex(key))")
        }
    }

    @Test func selectingRewindsAndTheWriteChannelBitIsIgnored() {
        select(0x0000)
        _ = readData(3)
        select(0x0000)
        #expect(readData(4) == Array("QEMU".utf8))
        select(0x4000)  // the signature with bit 14, "write mode"
        #expect(readData(4) == Array("QEMU".utf8))
        #expect(device.selector == 0x4000)
    }

    @Test func dataWritesAndOtherSelectorWidthsChangeNothing() {
        select(0x0000)
        _ = readData(1)
        #expect(bus.write(port: 0x511, size: 1, value: 0x41).unclaimed == .no)
        #expect(bus.write(port: 0x510, size: 1, value: 0x01).unclaimed == .no)  // a byte write is a data write
        #expect(bus.write(port: 0x510, size: 4, value: 0x01).unclaimed == .no)
        #expect(readData(3) == Array("EMU".utf8))
        #expect(device.selector == 0)
    }

    @Test func wideReadsReturnConsecutiveBytesLowestFirst() {
        select(0x0000)
        #expect(bus.read(port: 0x511, size: 2).value == 0x4551)  // "QE"
        #expect(bus.read(port: 0x511, size: 4).value == 0x0000_554d)  // "MU", then zeros
        select(0x0000)
        #expect(bus.read(port: 0x510, size: 1).value == 0x51, "the pair is one register for reads")
    }

    @Test func withoutACommandLineItsItemsAreEmpty() {
        let plain = FirmwareConfig(ramSize: 1 << 20, cpuCount: 1)
        _ = plain.write(offset: 0, size: 2, value: 0x0014)
        #expect(plain.read(offset: 1, size: 4) == 0)
        _ = plain.write(offset: 0, size: 2, value: 0x0019)
        #expect(plain.read(offset: 1, size: 4) == 0, "an empty directory: count 0")
        #expect(plain.item(0x0003) == [0, 0, 0x10, 0, 0, 0, 0, 0])
    }

    @Test func badAccessSizesNeverTrap() {
        for size in [0, 3, 8, 9, -1, Int.max] {
            _ = device.read(offset: 1, size: size)
            _ = device.write(offset: 0, size: size, value: .max)
        }
        #expect(device.read(offset: 5, size: 1) == 0xff)
    }
}
