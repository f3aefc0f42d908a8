/// A virtio device behind a transport: what it offers the driver and what it
/// does with its queues. Knows nothing about KVM or the transport's
/// registers; the transport calls every method with its lock held, so a
/// device never sees two of these calls at once.
public protocol VirtioDevice: AnyObject {
    /// What the Device ID register says.
    var type: VirtioDeviceType { get }
    /// The largest size of each of its queues; the count is the number of queues.
    var queueSizes: [UInt16] { get }
    /// Its own feature bits (the transport adds `VirtioFeatures.transport`).
    var features: VirtioFeatures { get }
    /// Its configuration space, as the driver reads it (little-endian fields).
    var configuration: [UInt8] { get }
    /// A driver write of `bytes` at `offset` in the configuration space,
    /// already checked to lie inside it.
    func writeConfiguration(at offset: Int, bytes: [UInt8])
    /// The driver set `DRIVER_OK`: from now on `queues` holds the ready
    /// queues, with the features the driver accepted. A device that cannot
    /// run so (a required queue missing) throws, and the device needs a reset.
    func activate(_ queues: VirtioQueueSet, link: VirtioDeviceLink) throws(VirtqueueError)
    /// The driver notified queue `queue` (on the I/O thread).
    func process(queue: Int, in queues: VirtioQueueSet) throws(VirtqueueError)
    /// The driver reset the device: drop the queues and anything in flight.
    func reset()
}

extension VirtioDevice {
    public func writeConfiguration(at offset: Int, bytes: [UInt8]) {}
}
