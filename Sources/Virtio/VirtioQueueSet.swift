import GuestMemory

/// An activated device's queues, with the guest RAM they live in and the
/// features the driver accepted. Valid until the device is reset; used only
/// with the transport's lock held (inside `VirtioDevice` calls and
/// `VirtioDeviceLink.perform`).
public final class VirtioQueueSet {
    public let memory: GuestMemoryView
    /// The features both sides agreed on.
    public let features: VirtioFeatures
    /// Queue `i`, or `nil` if the driver did not make it ready.
    public private(set) var queues: [Virtqueue?]
    private let raiseUsedBuffer: () -> Void

    init(memory: GuestMemoryView, features: VirtioFeatures, queues: [Virtqueue?], raiseUsedBuffer: @escaping () -> Void) {
        self.memory = memory
        self.features = features
        self.queues = queues
        self.raiseUsedBuffer = raiseUsedBuffer
    }

    /// Whether queue `index` exists and is ready.
    public func isReady(_ index: Int) -> Bool { index >= 0 && index < queues.count && queues[index] != nil }

    /// Runs `body` on queue `index` in place, or returns `nil` without one.
    private func withQueue<R>(_ index: Int, _ body: (inout Virtqueue) throws(VirtqueueError) -> R) throws(VirtqueueError) -> R? {
        guard index >= 0, index < queues.count, var queue = queues[index] else { return nil }
        defer { queues[index] = queue }
        return try body(&queue)
    }

    /// The next request on queue `index`, or `nil` when there is none (or no such queue).
    public func pop(_ index: Int) throws(VirtqueueError) -> DescriptorChain? {
        try withQueue(index) { (queue: inout Virtqueue) throws(VirtqueueError) in try queue.pop() } ?? nil
    }

    /// Whether queue `index` has requests the device has not taken.
    public func hasAvailable(_ index: Int) throws(VirtqueueError) -> Bool {
        try withQueue(index) { (queue: inout Virtqueue) throws(VirtqueueError) in try queue.hasAvailable() } ?? false
    }

    /// Gives request `head` back on queue `index` with `written` bytes written.
    public func push(_ index: Int, head: UInt16, written: UInt32) throws(VirtqueueError) {
        _ = try withQueue(index) { (queue: inout Virtqueue) throws(VirtqueueError) in try queue.push(head: head, written: written) }
    }

    /// Raises the used-buffer interrupt if the driver wants one for what was pushed on queue `index`.
    public func notify(_ index: Int) throws(VirtqueueError) {
        let wanted = try withQueue(index) { (queue: inout Virtqueue) throws(VirtqueueError) in try queue.needsNotification() }
        if wanted == true { raiseUsedBuffer() }
    }

    /// The queues' saved state.
    var states: [Virtqueue.State?] { queues.map { $0?.state } }
}
