#if canImport(Glibc)
    import Glibc
#endif

/// A point in time on `CLOCK_MONOTONIC`, the clock `MonotonicCondition` and
/// the timers wait on: it never jumps with the wall clock, and it stops
/// while the host is suspended.
public struct MonotonicDeadline: Sendable, Hashable, Comparable {
    /// Nanoseconds since `CLOCK_MONOTONIC`'s (unspecified) origin.
    public let nanoseconds: Int64

    /// The longest wait a deadline represents: about a century, far beyond
    /// any timeout, and far from `Int64`'s overflow.
    static let farFuture: Int64 = 100 * 365 * 86_400 * 1_000_000_000

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// The current time.
    public static var now: MonotonicDeadline {
        var time = Glibc.timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return MonotonicDeadline(nanoseconds: Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec))
    }

    /// `duration` from now; a negative duration means now, and a duration
    /// beyond a century is cut to one.
    public static func after(_ duration: Duration) -> MonotonicDeadline {
        now.advanced(by: duration)
    }

    /// This deadline moved later by `duration` (never earlier; at most a century).
    public func advanced(by duration: Duration) -> MonotonicDeadline {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, attoseconds >= 0 else { return self }
        let capped = seconds >= Self.farFuture / 1_000_000_000
        let delta = capped ? Self.farFuture : seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        return MonotonicDeadline(nanoseconds: nanoseconds + delta)
    }

    /// Whether the deadline is now or earlier.
    public var hasPassed: Bool { self <= .now }

    /// The time left until the deadline; zero once it has passed.
    public var remaining: Duration { .nanoseconds(max(0, nanoseconds - Self.now.nanoseconds)) }

    /// The deadline as the absolute `timespec` `pthread_cond_timedwait` and
    /// `timerfd_settime` take.
    public var timespecValue: Glibc.timespec {
        let clamped = max(0, nanoseconds)
        return Glibc.timespec(tv_sec: Int(clamped / 1_000_000_000), tv_nsec: Int(clamped % 1_000_000_000))
    }

    public static func < (lhs: MonotonicDeadline, rhs: MonotonicDeadline) -> Bool { lhs.nanoseconds < rhs.nanoseconds }
}
