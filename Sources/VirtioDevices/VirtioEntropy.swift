import CHostSupport
import GuestMemory
import Synchronization
import Virtio

#if canImport(Glibc)
    import Glibc
#endif

/// A virtio-rng device (virtio 1.2, section 5.4): every buffer the driver
/// offers comes back filled from the host's `getrandom`.
public final class VirtioEntropy: VirtioDevice, @unchecked Sendable {
    /// The most bytes one request gets, whatever room its buffers offer, so
    /// that a driver cannot make the VMM allocate gigabytes.
    static let maximumRequest = 64 << 10

    public let type = VirtioDeviceType.entropy
    public let queueSizes: [UInt16] = [256]
    public let features = VirtioFeatures()
    public let configuration: [UInt8] = []
    private let delivered = Atomic<UInt64>(0)
    /// Bytes given to the guest so far.
    public var bytesDelivered: UInt64 { delivered.load(ordering: .relaxed) }

    public init() {}

    public func activate(_ queues: VirtioQueueSet, link: VirtioDeviceLink) throws(VirtqueueError) {}
    public func reset() {}

    public func process(queue: Int, in queues: VirtioQueueSet) throws(VirtqueueError) {
        guard queue == 0 else { return }
        while let chain = try queues.pop(0) {
            let count = Int(min(UInt64(Self.maximumRequest), chain.writableLength))
            var bytes = [UInt8](repeating: 0, count: count)
            var filled = 0
            while filled < count {
                let got = bytes[filled...].withUnsafeMutableBytes { getrandom($0.baseAddress, $0.count, 0) }
                if got < 0 && errno == EINTR { continue }
                guard got > 0 else { break }
                filled += got
            }
            let written: Int
            do { written = try chain.writable.write(Array(bytes[..<filled]), to: queues.memory) } catch { throw .memory(error) }
            delivered.add(UInt64(written), ordering: .relaxed)
            try queues.push(0, head: chain.head, written: UInt32(written))
        }
        try queues.notify(0)
    }
}
