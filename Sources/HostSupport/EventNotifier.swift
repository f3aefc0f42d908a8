import CHostSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A counter in the kernel that one side signals and another waits on: an
/// eventfd. Devices use them as KVM's ioeventfds (the guest's doorbell
/// writes land here) and irqfds (a write here raises the guest's interrupt),
/// and to wake their own I/O threads.
///
/// Owns its descriptor (non-blocking, close-on-exec) and closes it in `deinit`.
public final class EventNotifier: Sendable {
    /// The eventfd, for registering with KVM or an `EventLoop`. Stays this object's.
    public let fileDescriptor: Int32

    /// A new eventfd with a count of zero. The corresponding C function is `eventfd`.
    public init() throws(EventLoopError) {
        let fd = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard fd >= 0 else { throw .cannotCreate(what: "eventfd", errno: errno) }
        fileDescriptor = fd
    }

    deinit { _ = Glibc.close(fileDescriptor) }

    /// Adds one to the count, waking whoever waits. Safe from any thread.
    public func signal() {
        var one: UInt64 = 1
        // Only an overflow of the 64-bit count (never, at one per event) could fail it.
        while write(fileDescriptor, &one, 8) < 0 && errno == EINTR {}
    }

    /// Reads and resets the count; 0 when nothing was signalled since the last call.
    @discardableResult
    public func drain() -> UInt64 {
        var count: UInt64 = 0
        while true {
            if read(fileDescriptor, &count, 8) == 8 { return count }
            if errno != EINTR { return 0 }
        }
    }
}
