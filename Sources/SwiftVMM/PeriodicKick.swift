import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// Calls `action` every `interval` on a thread of its own until stopped.
final class PeriodicKick {
    private final class Shared: Sendable {
        let running = ThreadLock(true)
    }

    private let shared = Shared()
    private var thread = pthread_t()
    private var started = false

    init(every interval: Duration, _ action: @escaping @Sendable () -> Void) {
        let shared = self.shared
        let microseconds = UInt32(clamping: interval.components.seconds * 1_000_000 + interval.components.attoseconds / 1_000_000_000_000)
        let body: @Sendable () -> Void = {
            while shared.running.withLock({ $0 }) {
                usleep(microseconds)
                if shared.running.withLock({ $0 }) { action() }
            }
        }
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        started =
            pthread_create(
                &thread, nil,
                { context in
                    guard let context else { return nil }
                    Unmanaged<Box>.fromOpaque(context).takeRetainedValue().body()
                    return nil
                }, context) == 0
        if !started { Unmanaged<Box>.fromOpaque(context).release() }
    }

    /// Stops the thread and waits for it (at most one interval).
    func stop() {
        shared.running.withLock { $0 = false }
        if started { pthread_join(thread, nil) }
        started = false
    }

    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
}
