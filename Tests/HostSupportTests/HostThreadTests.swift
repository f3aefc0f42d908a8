import CHostSupport
import Synchronization
import Testing

@testable import HostSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct HostThreadTests {
    @Test func joinReturnsAfterTheBodyRan() throws {
        let ran = Atomic<Bool>(false)
        let thread = try HostThread.spawn(name: "hs-join") {
            usleep(20_000)
            ran.store(true, ordering: .releasing)
        }
        thread.join()
        let didRun = ran.load(ordering: .acquiring)
        #expect(didRun)
        thread.join()  // idempotent
    }

    @Test func joinFromManyThreadsAtOnceWaitsInEach() throws {
        let release = Shared(false)
        let finished = Atomic<Bool>(false)
        let thread = try HostThread.spawn(name: "hs-joined") {
            _ = release.wait { $0 }
            finished.store(true, ordering: .releasing)
        }
        let sawFinished = Shared(0)
        let joiners = try (0..<4).map { index in
            try HostThread.spawn(name: "hs-joiner-\(index)") {
                thread.join()
                if finished.load(ordering: .acquiring) { sawFinished.withLock { $0 += 1 } }
            }
        }
        release.withLock { $0 = true }
        for joiner in joiners { joiner.join() }
        #expect(sawFinished.current == 4)
    }

    @Test func theNameShowsInProcAndIsCutTo15Bytes() throws {
        let started = Shared(0)
        let release = Shared(false)
        let short = try HostThread.spawn(name: "hs-named") {
            started.withLock { $0 += 1 }
            _ = release.wait { $0 }
        }
        // 18 bytes; "é" (2 bytes) would end at byte 16, so the name stops before it.
        let long = try HostThread.spawn(name: "hs-long-names-é-x") {
            started.withLock { $0 += 1 }
            _ = release.wait { $0 }
        }
        #expect(started.wait { $0 == 2 })
        let names = threadNames()
        release.withLock { $0 = true }
        short.join()
        long.join()
        #expect(names.contains("hs-named"))
        #expect(names.contains("hs-long-names-"))
        #expect(HostThread.cName("0123456789abcdefgh").count == HostThread.nameLimit + 1)
    }

    @Test(arguments: [256 << 10, 1 << 20])
    func theStackSizeIsHonoured(size: Int) throws {
        let seen = Shared(0)
        let thread = try HostThread.spawn(name: "hs-stack", stackSize: size) {
            var attributes = pthread_attr_t()
            guard pthread_getattr_np(pthread_self(), &attributes) == 0 else { return }
            defer { pthread_attr_destroy(&attributes) }
            var stackSize = 0
            pthread_attr_getstacksize(&attributes, &stackSize)
            seen.withLock { $0 = stackSize }
        }
        thread.join()
        #expect(seen.current >= size)
        #expect(seen.current < size + (64 << 10))
    }

    @Test func aStackBelowTheMinimumIsRefused() {
        #expect(throws: HostThreadError.invalidStackSize(1024)) {
            _ = try HostThread.spawn(name: "hs-tiny", stackSize: 1024) {}
        }
    }

    @Test func isCurrentAndPthreadNameTheThread() throws {
        let handle = Shared<JoinHandle?>(nil)
        let answers = Shared<[Bool]>([])
        let thread = try HostThread.spawn(name: "hs-current") {
            guard handle.wait(until: { $0 != nil }), let me = handle.current else { return }
            answers.withLock { $0 = [me.isCurrent, pthread_equal(me.pthread, pthread_self()) != 0] }
        }
        handle.withLock { $0 = thread }
        thread.join()
        #expect(answers.current == [true, true])
        #expect(!thread.isCurrent)
        handle.withLock { $0 = nil }
    }

    @Test func joinOnTheThreadItselfDetachesInsteadOfWaiting() throws {
        let handle = Shared<JoinHandle?>(nil)
        let done = Shared(false)
        let thread = try HostThread.spawn(name: "hs-self-join") {
            guard handle.wait(until: { $0 != nil }), let me = handle.current else { return }
            me.join()  // must not deadlock
            done.withLock { $0 = true }
        }
        handle.withLock { $0 = thread }
        #expect(done.wait { $0 })
        thread.join()  // detached: returns at once
        handle.withLock { $0 = nil }
    }
}
