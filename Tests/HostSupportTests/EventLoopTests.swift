import HostSupport
import Synchronization
import Testing
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct EventLoopTests {
    @Test func aHandlerReadsWhatArrivesOnAPipe() throws {
        let loop = try EventLoop(name: "hs-loop")
        let pipe = TestPipe()
        let received = Shared<[UInt8]>([])
        let onLoopThread = Shared<[Bool]>([])
        try loop.register(fd: pipe.readEnd, events: .readable) { [readEnd = pipe.readEnd] events in
            var buffer = [UInt8](repeating: 0, count: 64)
            let count = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            guard count > 0 else { return }
            received.withLock { $0 += buffer[0..<count] }
            onLoopThread.withLock { $0.append(loop.isCurrent && events.contains(.readable)) }
        }
        pipe.write(Array("hello".utf8))
        #expect(received.wait { $0.count == 5 })
        pipe.write(Array(" loop".utf8))
        #expect(received.wait { $0.count == 10 })
        #expect(received.current == Array("hello loop".utf8))
        #expect(onLoopThread.current.allSatisfy { $0 })
        try loop.unregister(fd: pipe.readEnd)
        pipe.write([1])
        usleep(20_000)
        #expect(received.current.count == 10)
        #expect(throws: EventLoopError.notRegistered(fileDescriptor: pipe.readEnd)) { try loop.unregister(fd: pipe.readEnd) }
        loop.stop()
        #expect(throws: EventLoopError.stopped) { try loop.register(fd: pipe.readEnd) { _ in } }
    }

    @Test func registeringTwiceIsRefused() throws {
        let loop = try EventLoop()
        let pipe = TestPipe()
        try loop.register(fd: pipe.readEnd) { _ in }
        #expect(throws: EventLoopError.cannotRegister(fileDescriptor: pipe.readEnd, errno: EEXIST)) {
            try loop.register(fd: pipe.readEnd) { _ in }
        }
        loop.stop()
    }

    @Test func scheduledActionsRunInOrderOfTheirTimes() throws {
        let loop = try EventLoop()
        let order = Shared<[Int]>([])
        try loop.schedule(after: .milliseconds(60)) { order.withLock { $0.append(2) } }
        try loop.schedule(after: .milliseconds(10)) { order.withLock { $0.append(1) } }
        #expect(order.wait { $0.count == 2 })
        #expect(order.current == [1, 2])
        loop.stop()
    }

    @Test func aHandlerMayStopTheLoop() throws {
        let loop = try EventLoop()
        let stopped = Shared(false)
        try loop.schedule(after: .zero) {
            loop.stop()
            stopped.withLock { $0 = true }
        }
        #expect(stopped.wait { $0 })
        loop.stop()
    }

    @Test func wakeIsHarmlessBeforeAndAfterStop() throws {
        let loop = try EventLoop()
        loop.wake()
        loop.wake()
        loop.stop()
        loop.wake()
        loop.stop()
    }
}

/// XCTest, not Swift Testing, on purpose: XCTest runs its tests one at a
/// time, apart from Swift Testing's parallel ones, so the process's
/// descriptor count is this test's alone.
final class HostSupportResourceTests: XCTestCase {
    func testAnEventLoopAndTimersGiveBackEveryFileDescriptor() throws {
        let before = openFileDescriptorCount()
        do {
            let pipe = TestPipe()
            let loop = try EventLoop()
            let received = Shared(0)
            try loop.register(fd: pipe.readEnd) { [readEnd = pipe.readEnd] _ in
                var byte: UInt8 = 0
                if read(readEnd, &byte, 1) == 1 { received.withLock { $0 += 1 } }
            }
            try loop.schedule(after: .milliseconds(1)) {}
            try loop.schedule(after: .seconds(3600)) {}  // still pending at stop: closed then
            pipe.write([7])
            XCTAssertTrue(received.wait { $0 == 1 })
            loop.stop()
            let timer = try DeadlineTimer(after: .milliseconds(1)) {}
            XCTAssertTrue(eventually { timer.hasFired })
            timer.disarm()
            try PeriodicTimer(every: .milliseconds(1)) {}.stop()
            try HostThread.spawn(name: "hs-fds") {}.join()
        }
        XCTAssertEqual(openFileDescriptorCount(), before)
    }

    func testALoopStoppedFromItsOwnHandlerClosesItsDescriptorsWhenTheHandlerReturns() throws {
        let before = openFileDescriptorCount()
        let stopped = Shared(false)
        do {
            let loop = try EventLoop()
            // The far timer first: the near one may stop the loop before a
            // second `schedule` call would get in (it did under TSan).
            try loop.schedule(after: .seconds(3600)) {}
            try loop.schedule(after: .zero) {
                loop.stop()
                stopped.withLock { $0 = true }
            }
            XCTAssertTrue(stopped.wait { $0 })
        }
        XCTAssertTrue(eventually { openFileDescriptorCount() == before }, "\(before) -> \(openFileDescriptorCount())")
    }

    func testAThreadNamedAndJoinedLeavesNoThreadBehind() throws {
        for _ in 0..<50 { try HostThread.spawn(name: "hs-churn", stackSize: 64 << 10) {}.join() }
        XCTAssertTrue(eventually { !threadNames().contains("hs-churn") })
    }
}
