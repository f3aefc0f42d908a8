import Foundation
import GuestMemory
import Testing
import VMCore
import Virtio
import VirtioDevices
import VirtioTestDriver

/// virtio-blk driven by the Swift test driver over plain memory: the bytes
/// in the image file are the evidence.
@Suite final class VirtioBlockTests {
    let path: String
    let memory: GuestMemoryView

    init() throws {
        path = NSTemporaryDirectory() + "swiftvmm-blk-\(UUID().uuidString).img"
        _ = FileManager.default.createFile(atPath: path, contents: Data(count: 1 << 20))
        memory = try GuestMemory(size: 4 << 20).view
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func makeDriver(readOnly: Bool = false, identifier: String? = nil) throws -> (VirtioTestDriver, VirtioBlock) {
        let device = VirtioBlock(image: try BlockImage(path: path, readOnly: readOnly), identifier: identifier)
        let transport = try VirtioMMIOTransport(device: device, memory: memory, interrupt: nil, eventLoop: nil)
        let driver = VirtioTestDriver(transport: transport, memory: memory)
        #expect(driver.negotiate())
        driver.setUpQueue(0, size: 64)
        #expect(driver.start())
        return (driver, device)
    }

    static func header(_ type: UInt32, sector: UInt64) -> [UInt8] {
        withUnsafeBytes(of: type.littleEndian) { Array($0) } + [0, 0, 0, 0] + withUnsafeBytes(of: sector.littleEndian) { Array($0) }
    }

    /// Submits one request and returns its status byte and the used length.
    func request(_ driver: VirtioTestDriver, _ buffers: [VirtioTestDriver.Buffer]) -> (status: UInt8, used: UInt32, writable: [UInt64]) {
        let (_, writable) = driver.submit(queue: 0, buffers + [.writable(1)])
        driver.notify(queue: 0)
        let used = driver.takeUsed(queue: 0)
        return (driver.bytes(at: writable.last ?? 0, count: 1).first ?? 0xff, used.first?.length ?? 0, writable)
    }

    func fileBytes(at offset: Int, count: Int) throws -> [UInt8] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return Array(data[offset..<offset + count])
    }

    @Test func configurationReportsCapacityAndLimits() throws {
        let (driver, _) = try makeDriver()
        #expect(driver.configuration(offset: 0, size: 8) == 2048, "1 MiB is 2048 sectors")
        #expect(driver.configuration(offset: 20, size: 4) == 512)
        driver.write(0x14, 0)
        let features = driver.read(0x10)
        #expect(features & (1 << 9) != 0, "FLUSH")
        #expect(features & (1 << 13) != 0, "DISCARD")
        #expect(features & (1 << 14) != 0, "WRITE_ZEROES")
        #expect(features & (1 << 5) == 0, "not RO")
    }

    @Test func writeFlushAndReadBack() throws {
        let (driver, device) = try makeDriver()
        let pattern = (0..<1024).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }
        // Split across two buffers, as a driver's scatter-gather list would be.
        let write = request(
            driver, [.readable(Self.header(1, sector: 3)), .readable(Array(pattern[..<100])), .readable(Array(pattern[100...]))])
        #expect(write.status == 0)
        #expect(try fileBytes(at: 3 * 512, count: 1024) == pattern)
        #expect(request(driver, [.readable(Self.header(4, sector: 0))]).status == 0)
        let read = request(driver, [.readable(Self.header(0, sector: 3)), .writable(1000), .writable(24)])
        #expect(read.status == 0)
        #expect(read.used == 1025)
        #expect(driver.bytes(at: read.writable[0], count: 1000) + driver.bytes(at: read.writable[1], count: 24) == pattern)
        #expect(device.statistics.writeRequests == 1)
        #expect(device.statistics.bytesRead == 1024)
    }

    @Test func getIDReturnsTheIdentifierPadded() throws {
        let (driver, _) = try makeDriver(identifier: "disk-one")
        let result = request(driver, [.readable(Self.header(8, sector: 0)), .writable(20)])
        #expect(result.status == 0)
        #expect(driver.bytes(at: result.writable[0], count: 20) == Array("disk-one".utf8) + [UInt8](repeating: 0, count: 12))
    }

    @Test func readOnlyDiskRefusesWritesAndOffersNoDiscard() throws {
        let (driver, _) = try makeDriver(readOnly: true)
        driver.write(0x14, 0)
        #expect(driver.read(0x10) & (1 << 5) != 0)
        #expect(request(driver, [.readable(Self.header(1, sector: 0)), .readable([1, 2, 3])]).status == 1)
        #expect(try fileBytes(at: 0, count: 3) == [0, 0, 0])
    }

    @Test func requestsPastTheEndFail() throws {
        let (driver, _) = try makeDriver()
        #expect(request(driver, [.readable(Self.header(0, sector: 2047)), .writable(1024)]).status == 1)
        #expect(request(driver, [.readable(Self.header(1, sector: UInt64.max / 256)), .readable([1])]).status == 1)
        #expect(request(driver, [.readable(Self.header(0, sector: 2047)), .writable(512)]).status == 0)
    }

    @Test func unknownRequestTypeIsUnsupported() throws {
        let (driver, _) = try makeDriver()
        #expect(request(driver, [.readable(Self.header(99, sector: 0))]).status == 2)
    }

    @Test func shortHeaderIsAnIOError() throws {
        let (driver, _) = try makeDriver()
        #expect(request(driver, [.readable([0, 0, 0])]).status == 1)
    }

    @Test func discardAndWriteZeroesZeroTheRange() throws {
        let (driver, _) = try makeDriver()
        _ = request(driver, [.readable(Self.header(1, sector: 8)), .readable([UInt8](repeating: 0xee, count: 4096))])
        func segment(_ sector: UInt64, _ count: UInt32, _ flags: UInt32) -> [UInt8] {
            withUnsafeBytes(of: sector.littleEndian) { Array($0) } + withUnsafeBytes(of: count.littleEndian) { Array($0) }
                + withUnsafeBytes(of: flags.littleEndian) { Array($0) }
        }
        #expect(request(driver, [.readable(Self.header(11, sector: 0)), .readable(segment(8, 4, 0))]).status == 0)
        #expect(try fileBytes(at: 8 * 512, count: 2048).allSatisfy { $0 == 0 })
        #expect(try fileBytes(at: 12 * 512, count: 2048).allSatisfy { $0 == 0xee })
        #expect(request(driver, [.readable(Self.header(13, sector: 0)), .readable(segment(12, 4, 1))]).status == 0)
        #expect(try fileBytes(at: 12 * 512, count: 2048).allSatisfy { $0 == 0 })
        #expect(
            request(driver, [.readable(Self.header(11, sector: 0)), .readable(segment(0, 1, 1))]).status == 2, "discard takes no flags")
        #expect(request(driver, [.readable(Self.header(11, sector: 0)), .readable(segment(2040, 100, 0))]).status == 1, "past the end")
        #expect(request(driver, [.readable(Self.header(11, sector: 0)), .readable([1, 2, 3])]).status == 1, "not whole segments")
    }

    @Test func requestWithoutStatusByteNeedsAReset() throws {
        let (driver, _) = try makeDriver()
        driver.submit(queue: 0, [.readable(Self.header(0, sector: 0))])
        driver.notify(queue: 0)
        #expect(driver.status & 0x40 != 0)
    }

    @Test func openingErrorsNameTheFile() {
        #expect(throws: BlockImageError.cannotOpen(path: "/nonexistent/x.img", errno: ENOENT)) {
            try BlockImage(path: "/nonexistent/x.img", readOnly: false)
        }
        #expect(throws: BlockImageError.isDirectory(path: "/tmp")) { try BlockImage(path: "/tmp", readOnly: true) }
        let empty = NSTemporaryDirectory() + "swiftvmm-empty-\(UUID().uuidString).img"
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        defer { try? FileManager.default.removeItem(atPath: empty) }
        #expect(throws: BlockImageError.tooSmall(path: empty, size: 0)) { try BlockImage(path: empty, readOnly: false) }
    }
}
