import HostSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct DeadlineTimerTests {
    @Test func itFiresOnceTheTimeHasPassed() throws {
        let fired = Shared(0)
        let start = MonotonicDeadline.now
        let timer = try DeadlineTimer(after: .milliseconds(50)) { fired.withLock { $0 += 1 } }
        #expect(fired.wait { $0 == 1 })
        #expect(MonotonicDeadline.now.nanoseconds - start.nanoseconds >= 50_000_000)
        #expect(timer.hasFired)
        #expect(timer.disarm())
        #expect(timer.disarm())
        #expect(fired.current == 1)
    }

    @Test func disarmedBeforeItsTimeItNeverFires() throws {
        let fired = Atomic<Bool>(false)
        let timer = try DeadlineTimer(after: .seconds(30)) { fired.store(true, ordering: .relaxed) }
        let start = MonotonicDeadline.now
        #expect(!timer.disarm())
        // The thread was woken, not left to sleep out its 30 s.
        #expect(MonotonicDeadline.now.nanoseconds - start.nanoseconds < 5_000_000_000)
        #expect(!timer.hasFired)
        let didFire = fired.load(ordering: .relaxed)
        #expect(!didFire)
    }

    @Test func disarmWaitsForAnActionInProgress() throws {
        let entered = Shared(false)
        let finished = Atomic<Bool>(false)
        let timer = try DeadlineTimer(after: .zero) {
            entered.withLock { $0 = true }
            usleep(50_000)
            finished.store(true, ordering: .releasing)
        }
        #expect(entered.wait { $0 })
        #expect(timer.disarm())
        let didFinish = finished.load(ordering: .acquiring)
        #expect(didFinish)
    }
}

@Suite struct PeriodicTimerTests {
    /// With `startingAt`, the gaps are 1, 2, 4, 8 ms...: five calls come long
    /// before one 10 s interval would have passed, and none comes early.
    @Test func aStartingGapDoublesUpToTheInterval() throws {
        let times = Shared<[Int64]>([])
        let start = MonotonicDeadline.now
        let timer = try PeriodicTimer(every: .seconds(10), startingAt: .milliseconds(1)) {
            times.withLock { $0.append(MonotonicDeadline.now.nanoseconds - start.nanoseconds) }
        }
        #expect(times.wait { $0.count >= 5 })
        timer.stop()
        let calls = times.current
        #expect(calls.count >= 5 && calls.count < 12, "\(calls)")
        for (index, time) in calls.prefix(5).enumerated() {
            // Call n (from 0) comes no sooner than 1 + 2 + ... + 2^n ms after the start.
            #expect(time >= Int64((1 << (index + 1)) - 1) * 1_000_000, "call \(index) at \(time) ns: \(calls)")
        }
    }

    @Test func itRunsRepeatedlyAndNotAfterStop() throws {
        let count = Shared(0)
        let start = MonotonicDeadline.now
        let timer = try PeriodicTimer(every: .milliseconds(10)) { count.withLock { $0 += 1 } }
        #expect(count.wait { $0 >= 3 })
        timer.stop()
        let elapsed = MonotonicDeadline.now.nanoseconds - start.nanoseconds
        let stopped = count.current
        // No more calls than intervals passed (plus the one that may have been running).
        #expect(Int64(stopped) <= elapsed / 10_000_000 + 1)
        usleep(50_000)
        #expect(count.current == stopped)
        timer.stop()
    }

    @Test func stopWakesTheThreadAtOnce() throws {
        let calls = Atomic<Int>(0)
        let timer = try PeriodicTimer(every: .seconds(30)) { calls.add(1, ordering: .relaxed) }
        let start = MonotonicDeadline.now
        timer.stop()
        #expect(MonotonicDeadline.now.nanoseconds - start.nanoseconds < 5_000_000_000)
        let callCount = calls.load(ordering: .relaxed)
        #expect(callCount == 0)
    }

    @Test func theActionMayStopItsOwnTimer() throws {
        let timer = Shared<PeriodicTimer?>(nil)
        let calls = Shared(0)
        timer.withLock {
            $0 = try? PeriodicTimer(every: .milliseconds(5)) {
                let count = calls.withLock { count -> Int in
                    count += 1
                    return count
                }
                if count == 2 { timer.current?.stop() }
            }
        }
        #expect(calls.wait { $0 >= 2 })
        usleep(50_000)
        #expect(calls.current == 2)
        timer.withLock { $0 = nil }
    }
}

@Suite struct MonotonicDeadlineTests {
    @Test func arithmeticSaturatesAndNeverGoesBack() {
        let now = MonotonicDeadline.now
        #expect(now.advanced(by: .seconds(-5)) == now)
        #expect(now.advanced(by: .milliseconds(1500)).nanoseconds - now.nanoseconds == 1_500_000_000)
        #expect(now.advanced(by: .seconds(Int64.max)) > now.advanced(by: .seconds(86_400 * 365 * 50)))
        #expect(now.hasPassed)
        #expect(!MonotonicDeadline.after(.seconds(60)).hasPassed)
        let time = MonotonicDeadline(nanoseconds: 3_000_000_007).timespecValue
        #expect(time.tv_sec == 3 && time.tv_nsec == 7)
    }

    @Test func aConditionWaitEndsAtItsDeadline() {
        let condition = MonotonicCondition()
        let start = MonotonicDeadline.now
        let woken = condition.withLock { condition.wait(until: .after(.milliseconds(30))) }
        #expect(!woken || MonotonicDeadline.now.nanoseconds - start.nanoseconds < 30_000_000)
        #expect(MonotonicDeadline.now.nanoseconds - start.nanoseconds >= 30_000_000 || woken)
    }
}
