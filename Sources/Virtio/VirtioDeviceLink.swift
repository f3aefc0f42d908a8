import HostSupport

/// What an activated device holds on to for work that does not start with a
/// driver's notification: a tap or socket becoming readable on the I/O
/// thread, a host-side request (a balloon target), a configuration change.
public struct VirtioDeviceLink: Sendable {
    private let transport: @Sendable () -> VirtioMMIOTransport?
    /// The I/O thread's loop, for watching the device's own descriptors;
    /// `nil` when the device is driven by hand (unit tests).
    public let eventLoop: EventLoop?

    init(transport: VirtioMMIOTransport, eventLoop: EventLoop?) {
        self.transport = { [weak transport] in transport }
        self.eventLoop = eventLoop
    }

    /// Runs `body` with the transport's lock held and the device's queues,
    /// if the device is still active; a queue error puts it in `NEEDS_RESET`.
    public func perform(_ body: (VirtioQueueSet) throws(VirtqueueError) -> Void) {
        transport()?.performOnActiveQueues(body)
    }

    /// Tells the driver the configuration space changed (a new generation
    /// and the configuration-change interrupt).
    public func configurationChanged() {
        transport()?.configurationChanged()
    }
}
