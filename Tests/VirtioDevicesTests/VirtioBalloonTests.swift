import GuestMemory
import Testing
import VMCore
import Virtio

@testable import VirtioDevices

@Suite("VirtioBalloon")
struct VirtioBalloonTests {
    static let statistics = VirtioBalloon.Feature.statisticsQueue.rawValue
    static let reporting = VirtioBalloon.Feature.pageReporting.rawValue

    /// The bytes of `pageNumbers` as an inflate request.
    static func request(_ pageNumbers: [UInt32]) -> [UInt8] { pageNumbers.flatMap { LittleEndian.bytes($0) } }

    @Test func offersStatisticsAndReportingWithFourQueues() throws {
        let balloon = VirtioBalloon()
        let driver = try TestDriver(device: balloon)
        #expect(driver.driver.read(0x008) == 5)
        #expect(driver.offered & (Self.statistics | Self.reporting) == Self.statistics | Self.reporting)
        #expect(driver.offered & VirtioBalloon.Feature.deflateOnOutOfMemory.rawValue == 0)
        #expect(balloon.queueSizes.count == 4)
        #expect(VirtioBalloon(deflateOnOutOfMemory: true, freePageReporting: false).queueSizes.count == 3)
    }

    @Test func targetIsConfigurationWithAChangeInterruptAndActualIsTheDrivers() throws {
        let balloon = VirtioBalloon()
        let driver = try TestDriver(device: balloon)
        driver.start(features: Self.statistics)
        #expect(driver.status.contains(.driverOK))
        let generation = driver.driver.read(0x0fc)
        balloon.setTarget(pages: 300)
        #expect(driver.configuration(0, size: 4) == 300)
        #expect(driver.driver.read(0x060) & 2 == 2)
        #expect(driver.driver.read(0x0fc) != generation)
        #expect(driver.interrupt.count.load(ordering: .relaxed) == 1)
        driver.writeConfiguration(4, size: 4, 120)
        #expect(balloon.actualPages == 120)
        #expect(driver.configuration(4, size: 4) == 120)
        // num_pages is the host's: a driver write is ignored.
        driver.writeConfiguration(0, size: 4, 7)
        #expect(balloon.targetPages == 300)
        // A 2-byte write to the top half of actual.
        driver.writeConfiguration(6, size: 2, 1)
        #expect(balloon.actualPages == 0x1_0078)
        let state = balloon.state
        #expect(state.targetPages == 300 && state.actualPages == 0x1_0078)
        let restored = VirtioBalloon()
        try restored.restore(state)
        #expect(restored.targetPages == 300 && restored.actualPages == 0x1_0078)
        #expect(throws: (any Error).self) {
            try restored.restore(.init(targetPages: 0, actualPages: 0, heldStatisticsHead: 300))
        }
    }

    @Test func inflatedPagesGoBackToTheHostAndPagesOutsideRAMAreSkipped() throws {
        let balloon = VirtioBalloon()
        let driver = try TestDriver(device: balloon, memorySize: 8 << 20)
        driver.start(features: Self.statistics)
        // 256 pages (1 MiB) at 4 MiB, written so that they are resident.
        let first: UInt32 = 1024
        try driver.memory.fill(0x5a, count: 256 * 4096, at: GuestAddress(UInt64(first) * 4096))
        var numbers = (0..<UInt32(256)).map { first + $0 }
        numbers.append(0xffff_0000)  // far outside RAM
        numbers.append(2048)  // just past the end of 8 MiB
        let (head, _) = driver.add(queue: 0, [.readable(Self.request(numbers))])
        // After the request is written and the used ring touched, so that only the balloon's doing counts.
        try driver.memory.writeInteger(UInt16(0), at: GuestAddress(driver.usedRing(0)))
        let before = try driver.memory.residentBytes()
        driver.notify(0)
        #expect(driver.used(queue: 0) == [.init(head: head, length: 0)])
        let after = try driver.memory.residentBytes()
        #expect(before - after >= 256 * 4096)
        #expect(try driver.memory.read(count: 8, at: GuestAddress(UInt64(first) * 4096)) == Array(repeating: 0, count: 8))
        #expect(balloon.releasedPages == 256)
        #expect(balloon.ignoredPages == 2)
        #expect(driver.status.contains(.driverOK) && !driver.status.contains(.needsReset))
        // Deflate needs nothing from the host but the buffer back.
        let deflate = driver.add(queue: 1, [.readable(Self.request([first]))])
        driver.notify(1)
        #expect(driver.used(queue: 1) == [.init(head: deflate.head, length: 0)])
    }

    @Test func reportedFreePagesGoBackToTheHost() throws {
        let balloon = VirtioBalloon()
        let driver = try TestDriver(device: balloon, memorySize: 8 << 20)
        driver.start(features: Self.statistics | Self.reporting)
        let base: UInt64 = 6 << 20
        try driver.memory.fill(0x77, count: 64 * 4096, at: GuestAddress(base))
        // A report is device-writable buffers, one per free block; build it by hand at `base`.
        driver.writeDescriptor(queue: 3, index: 0, address: base, length: 32 * 4096, flags: 3, next: 1)
        driver.writeDescriptor(queue: 3, index: 1, address: base + 32 * 4096, length: 32 * 4096, flags: 2, next: 0)
        driver.makeAvailable(queue: 3, head: 0)
        try driver.memory.writeInteger(UInt16(0), at: GuestAddress(driver.usedRing(3)))
        let before = try driver.memory.residentBytes()
        driver.notify(3)
        #expect(driver.used(queue: 3) == [.init(head: 0, length: 0)])
        #expect(try before - driver.memory.residentBytes() >= 64 * 4096)
        #expect(balloon.releasedPages == 64)
    }

    @Test func statisticsAreReadAndTheBufferGoesBackOnRequest() throws {
        let balloon = VirtioBalloon()
        let driver = try TestDriver(device: balloon)
        driver.start(features: Self.statistics)
        var buffer: [UInt8] = []
        for (tag, value) in [(UInt16(4), UInt64(1 << 30)), (5, 2 << 30), (0x99, 7)] {
            buffer += LittleEndian.bytes(tag) + LittleEndian.bytes(value)
        }
        let (head, _) = driver.add(queue: 2, [.readable(buffer + [1, 2, 3])])
        driver.notify(2)
        #expect(driver.used(queue: 2).isEmpty)
        let (values, updates) = balloon.statistics
        #expect(updates == 1)
        #expect(values == [4: 1 << 30, 5: 2 << 30, 0x99: 7])
        #expect(balloon.state.heldStatisticsHead == head)
        #expect(balloon.requestStatistics())
        #expect(driver.used(queue: 2) == [.init(head: head, length: 0)])
        #expect(!balloon.requestStatistics())
    }

    @Test func malformedInflateRequestsNeedAReset() throws {
        let balloon = VirtioBalloon()
        let driver = try TestDriver(device: balloon)
        driver.start(features: 0)
        driver.add(queue: 0, [.readable([1, 2, 3])])
        driver.notify(0)
        #expect(driver.status.contains(.needsReset))
        #expect(driver.errors.withLock { $0.first?.contains("inflate request of 3 bytes") == true })
        // A buffer outside RAM.
        let other = try TestDriver(device: VirtioBalloon())
        other.start(features: 0)
        other.writeDescriptor(queue: 0, index: 0, address: 0xffff_ffff_ffff_f000, length: 8, flags: 0, next: 0)
        other.makeAvailable(queue: 0, head: 0)
        other.notify(0)
        #expect(other.status.contains(.needsReset))
    }
}
