import Foundation
import Testing
import X86Boot

/// Why a test that needs a file from the host cannot run. Thrown, so the test
/// fails with this message rather than being skipped.
struct MissingFixture: Error, CustomStringConvertible {
    var description: String
}

/// Fixtures for the Linux and PVH boot tests.
enum LinuxFixtures {
    /// The Debian kernel the Linux tests read: the last `/boot/vmlinuz-*` by name.
    /// CI installs `linux-image-amd64` (see `.ci/run`); without it the tests fail and say so.
    static func debianKernel() throws -> (path: String, bytes: [UInt8]) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/boot")) ?? []
        guard let name = names.filter({ $0.hasPrefix("vmlinuz-") }).sorted().last else {
            throw MissingFixture(
                description:
                    "no /boot/vmlinuz-* found: the Linux boot tests read Debian's kernel; install it with `apt-get install linux-image-amd64` (.ci/run does)"
            )
        }
        let path = "/boot/" + name
        return (path, try readFile(path))
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw MissingFixture(description: "cannot read \(path)") }
        return [UInt8](data)
    }

    /// The package's root directory, found from this file's path.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Little-endian bytes of `value`.
    static func le<T: BinaryInteger>(_ value: T, _ size: Int) -> [UInt8] { (0..<size).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) } }

    /// A small bzImage with a valid protocol 2.15 header: one setup sector after the
    /// boot sector, then `kernelSize` bytes of protected-mode kernel filled with a pattern.
    static func bzImage(
        kernelSize: Int = 0x1000, preferredAddress: UInt64 = 0x20_0000, initSize: UInt32 = 0x10_0000,
        initrdAddressMax: UInt32 = 0x7fff_ffff, commandLineSize: UInt32 = 2047, kernelAlignment: UInt32 = 0x20_0000
    ) -> [UInt8] {
        let setupSize = 2 * 512
        var image = [UInt8](repeating: 0, count: setupSize) + (0..<kernelSize).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
        image[0x1f1] = 1  // setup_sects
        image.patch(kernelSize / 16, at: 0x1f4, size: 4)  // syssize
        image.patch(0xffff, at: 0x1fa, size: 2)  // vid_mode: normal
        image.patch(0xaa55, at: 0x1fe, size: 2)
        image[0x200] = 0xeb  // jmp short over the header, to 0x26c
        image[0x201] = 0x6a
        image.patch(0x5372_6448, at: 0x202, size: 4)  // "HdrS"
        image.patch(0x020f, at: 0x206, size: 2)
        image[0x211] = 0x01  // LOADED_HIGH
        image.patch(0x10_0000, at: 0x214, size: 4)  // code32_start
        image.patch(initrdAddressMax, at: 0x22c, size: 4)
        image.patch(kernelAlignment, at: 0x230, size: 4)
        image[0x234] = 1  // relocatable
        image[0x235] = 21  // min_alignment
        image.patch(0x0003, at: 0x236, size: 2)  // XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G
        image.patch(commandLineSize, at: 0x238, size: 4)
        image.patch(preferredAddress, at: 0x258, size: 8)
        image.patch(initSize, at: 0x260, size: 4)
        return image
    }

    /// The E820 map of a PC-like guest with `size` bytes of RAM from 0.
    static func pcMemoryMap(size: UInt64, reserved: [E820Entry] = []) throws -> E820Map {
        try E820Map(guestRAM: [(.init(0), size)], reserved: reserved)
    }
}

extension Array where Element == UInt8 {
    /// Overwrites `size` bytes at `offset` with `value`, little-endian.
    mutating func patch<T: BinaryInteger>(_ value: T, at offset: Int, size: Int) {
        replaceSubrange(offset..<offset + size, with: LinuxFixtures.le(value, size))
    }

    /// The little-endian integer of `size` bytes at `offset`.
    func littleEndian(at offset: Int, size: Int) -> UInt64 {
        (0..<size).reduce(0) { $0 | UInt64(self[offset + $1]) << ($1 * 8) }
    }
}
