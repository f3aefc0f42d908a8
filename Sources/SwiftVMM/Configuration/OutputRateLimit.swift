import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A token bucket for guest output to a file or stdout: a guest flooding its
/// serial port gets `bytesPerSecond` through after a first `burst`, and the
/// rest is dropped (counted), so it can neither fill the disk nor make the
/// VMM buffer without end.
public struct OutputRateLimit: Sendable, Equatable {
    public var bytesPerSecond: Int
    public var burst: Int

    public init(bytesPerSecond: Int, burst: Int) {
        self.bytesPerSecond = bytesPerSecond
        self.burst = burst
    }

    /// 1 MiB/s after an 8 MiB burst: far more than any boot log, far less than a disk.
    public static let standard = OutputRateLimit(bytesPerSecond: 1 << 20, burst: 8 << 20)

    /// The limit every `FileSerialOutput` made from now on gets (`nil`: none). The
    /// command line sets it from `--serial-rate-limit`; library users get none unless they set it.
    public static var forNewOutputs: OutputRateLimit? {
        get { current.withLock { $0 } }
        set { current.withLock { $0 = newValue } }
    }
    private static let current = Mutex<OutputRateLimit?>(nil)
}

/// The bucket's state for one output.
struct TokenBucketState {
    let limit: OutputRateLimit
    private var tokens: Double
    private var last: timespec

    init(limit: OutputRateLimit) {
        self.limit = limit
        tokens = Double(limit.burst)
        last = Self.now()
    }

    /// How many of `count` bytes may go out now (taking their tokens).
    mutating func take(_ count: Int) -> Int {
        let now = Self.now()
        let elapsed = Double(now.tv_sec - last.tv_sec) + Double(now.tv_nsec - last.tv_nsec) / 1e9
        last = now
        tokens = min(Double(limit.burst), tokens + elapsed * Double(limit.bytesPerSecond))
        let allowed = min(count, Int(tokens))
        tokens -= Double(allowed)
        return allowed
    }

    private static func now() -> timespec {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return time
    }
}
