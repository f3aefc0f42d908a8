import Foundation
import GuestMemory
import Migration
import SwiftVMM
import Testing
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// The local live upgrade: a machine with memfd-backed RAM moves to another
/// swiftvmm on this host (a Unix socket) by handing the memfd over
/// (`SCM_RIGHTS`), not a page copied; with the same dirty-memory guest and
/// the same continuity check as `LiveMigrationTests`. A destination that
/// refuses after it got the memfd leaves the guest running on the source.
@Suite struct MemoryHandoverTests {
    let live = LiveMigrationTests()

    @Test func midRunHandOverOverAUnixSocket() throws {
        let guest = LiveMigrationTests.Guest(memoryBacking: .memfd)
        let report = try live.migrateMidRun(to: .unix(path: LiveMigrationTests.socketPath("handover")), guest: guest)
        #expect(report.memoryHandedOver)
        #expect(report.pagesSent == 0, "no page was copied")
        #expect(report.zeroPages == 0)
        #expect(report.rounds == 0)
        // Headers, hellos, the handover message and the state: no RAM.
        #expect(report.bytesSent < 1 << 20)
    }

    @Test func aDestinationDecliningTheMemfdGetsThePagesCopied() throws {
        // Memfd RAM takes the ordinary path when the memfd does not go over:
        // the pre-copy's dirty log and populated-pages search work on it too.
        let guest = LiveMigrationTests.Guest(memoryBacking: .memfd)
        var incoming = IncomingMigrationOptions()
        incoming.acceptsMemoryHandover = false
        let report = try live.migrateMidRun(
            to: .unix(path: LiveMigrationTests.socketPath("nohandover")), guest: guest, incoming: incoming)
        #expect(!report.memoryHandedOver)
        #expect(report.pagesSent >= 1024, "the 4 MiB working set went over")
        #expect(report.zeroPages > 4096, "untouched RAM went as zero markers")
    }

    @Test func aDestinationThatRefusesAfterTheMemfdLeavesTheSourceRunning() throws {
        let checked = LiveMigrationTests.Box<String>()
        let guest = LiveMigrationTests.Guest(memoryBacking: .memfd)
        try live.sourceSurvives("handover-refused", guest: guest) { machine, address in
            let fake = live.fakeDestination(at: address) { connection in
                try? connection.sendStreamHeader()
                try? connection.receiveStreamHeader()
                guard case .hello(var hello)? = try? connection.receive() else { return checked.put("no hello") }
                guard hello.memoryHandover else { return checked.put("the source offered no memfd") }
                let layout = hello.memoryRegions.map { (base: GuestAddress($0.base), size: $0.size) }
                hello.vcpuCount = 0
                try? connection.send(.hello(hello))
                guard case .memoryHandover(let size)? = try? connection.receive() else { return checked.put("no memoryHandover") }
                let fd = connection.takeReceivedDescriptor()
                defer { if fd >= 0 { close(fd) } }
                // The descriptor is the guest's RAM: its 4 MiB working set has data in it (SEEK_DATA),
                // though this mapping touched nothing. Only read here: the pages are still the source's.
                do {
                    let memory = try GuestMemory(regions: layout, sharingMemfd: fd)
                    let pages = try memory.populatedPages().reduce(0) { $0 + $1.bitmap.reduce(0) { $0 + $1.nonzeroBitCount } }
                    checked.put(size == hello.memorySize && pages >= 1024 ? "ok" : "size \(size), \(pages) pages with data")
                } catch {
                    checked.put("\(error)")
                }
                try? connection.send(.error("refused (injected)"))
                connection.shutdown()
            }
            #expect {
                try machine.migrate(to: address)
            } throws: { error in
                guard case .peer(let message) = error as? MigrationError else { return false }
                return message.contains("refused (injected)")
            }
            _ = fake.take()
        }
        #expect(checked.take(timeout: .seconds(1)) == "ok")
    }
}
