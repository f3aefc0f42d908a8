import Devices
import GuestMemory
import HostSupport
import VMCore
import Virtio

#if canImport(Glibc)
    import Glibc
#endif

/// virtio-net (virtio 1.2, section 5.1) on a tap device: one receive and
/// one transmit queue, each frame preceded by the 12-byte
/// `virtio_net_hdr_v1`, which the tap (opened with `IFF_VNET_HDR`) reads and
/// writes in the same layout, so frames move between the tap and the guest's
/// buffers with one `readv`/`writev` and no copy.
///
/// Offloads (checksum, TSO, UFO) are offered only where the tap accepted
/// them, and the tap is told which ones the driver took. There are no
/// mergeable receive buffers (`MRG_RXBUF` is not offered): each frame goes
/// into one chain, which with the guest TSO features is a 64 KiB one (what
/// Linux's driver posts without `MRG_RXBUF`); a frame larger than a chain is
/// cut short by the tap.
///
/// Receiving is driven by the tap: while the guest has receive buffers the
/// tap is watched on the I/O thread's loop; when it has none the device
/// stops watching (frames wait in the tap's queue, which drops the excess as
/// a full NIC would), and starts again when the driver adds buffers.
public final class VirtioNet: VirtioDevice, @unchecked Sendable {
    // Unchecked: `counters` is behind its lock; the rest is only touched in
    // `VirtioDevice` calls or `link.perform`, which the transport serialises.

    /// virtio-net's feature bits (virtio 1.2, 5.1.3).
    public enum Feature {
        public static let checksum = VirtioFeatures(bit: 0)
        public static let guestChecksum = VirtioFeatures(bit: 1)
        public static let mac = VirtioFeatures(bit: 5)
        public static let guestTSO4 = VirtioFeatures(bit: 7)
        public static let guestTSO6 = VirtioFeatures(bit: 8)
        public static let guestECN = VirtioFeatures(bit: 9)
        public static let guestUFO = VirtioFeatures(bit: 10)
        public static let hostTSO4 = VirtioFeatures(bit: 11)
        public static let hostTSO6 = VirtioFeatures(bit: 12)
        public static let hostECN = VirtioFeatures(bit: 13)
        public static let hostUFO = VirtioFeatures(bit: 14)
        public static let mergeableReceiveBuffers = VirtioFeatures(bit: 15)
        public static let status = VirtioFeatures(bit: 16)
    }

    /// What the device has moved, for reports and benchmarks.
    public struct Counters: Hashable, Sendable {
        public var framesReceived: UInt64 = 0
        public var bytesReceived: UInt64 = 0
        public var framesSent: UInt64 = 0
        public var bytesSent: UInt64 = 0
        /// Frames from the guest the tap refused (or malformed ones), dropped.
        public var sendDropped: UInt64 = 0
        /// The last host-side failure, if any.
        public var lastError: String?
    }

    static let receiveQueue = 0
    static let transmitQueue = 1
    static let queueSize: UInt16 = 256
    static let headerSize: UInt64 = 12
    /// The largest frame a guest may send: a 64 KiB GSO frame plus its Ethernet header.
    static let maximumFrame: UInt64 = 65_550
    /// Frames moved per wake-up before the loop serves others.
    static let batch = 64

    public var type: VirtioDeviceType { .network }
    public let queueSizes: [UInt16] = [queueSize, queueSize]
    public let features: VirtioFeatures
    /// The guest's address.
    public let mac: MACAddress
    /// The tap's name, for messages.
    public let name: String

    private let tap: TapDevice?
    private let fileDescriptor: Int32
    private let setOffloads: @Sendable (TapDevice.Offloads) -> Void
    private let counters = ThreadLock(Counters())

    private var link: VirtioDeviceLink?
    private var watching = false
    /// A receive chain taken from the ring whose frame has not come yet (the
    /// tap said readable, then had nothing): used for the next frame.
    private var heldReceive: DescriptorChain?

    /// A network card on `tap`, with address `mac` (by default one derived from the tap's name).
    public convenience init(tap: TapDevice, mac: MACAddress? = nil) {
        self.init(
            tap: tap, fileDescriptor: tap.fileDescriptor, supportedOffloads: tap.supportedOffloads,
            setOffloads: { try? tap.setOffloads($0) }, name: tap.name, mac: mac)
    }

    /// A network card on any packet descriptor that carries frames with the
    /// 12-byte header in front (a datagram socket pair in tests).
    init(
        tap: TapDevice?, fileDescriptor: Int32, supportedOffloads: TapDevice.Offloads,
        setOffloads: @escaping @Sendable (TapDevice.Offloads) -> Void, name: String, mac: MACAddress?
    ) {
        self.tap = tap
        self.fileDescriptor = fileDescriptor
        self.setOffloads = setOffloads
        self.name = name
        self.mac = mac ?? MACAddress(derivedFrom: name)
        var features: VirtioFeatures = [Feature.mac, Feature.status]
        let pairs: [(TapDevice.Offloads, VirtioFeatures)] = [
            (.checksum, [Feature.checksum, Feature.guestChecksum]),
            (.tcp4Segmentation, [Feature.hostTSO4, Feature.guestTSO4]),
            (.tcp6Segmentation, [Feature.hostTSO6, Feature.guestTSO6]),
            (.tcpECN, [Feature.hostECN, Feature.guestECN]),
            (.udpFragmentation, [Feature.hostUFO, Feature.guestUFO]),
        ]
        for (offload, bits) in pairs where supportedOffloads.contains(offload) { features.formUnion(bits) }
        self.features = features
    }

    /// What the device has moved so far.
    public var statistics: Counters { counters.withLock { $0 } }

    /// The tap offloads that match the guest features a driver accepted.
    static func offloads(for features: VirtioFeatures) -> TapDevice.Offloads {
        var offloads: TapDevice.Offloads = []
        guard features.contains(Feature.guestChecksum) else { return offloads }
        offloads.insert(.checksum)
        if features.contains(Feature.guestTSO4) { offloads.insert(.tcp4Segmentation) }
        if features.contains(Feature.guestTSO6) { offloads.insert(.tcp6Segmentation) }
        if features.contains(Feature.guestECN) { offloads.insert(.tcpECN) }
        if features.contains(Feature.guestUFO) { offloads.insert(.udpFragmentation) }
        return offloads
    }

    // MARK: VirtioDevice

    /// `mac`, `status` (link up) and `max_virtqueue_pairs` (1).
    public var configuration: [UInt8] { mac.bytes + LittleEndian.bytes(UInt16(1)) + LittleEndian.bytes(UInt16(1)) }

    public func activate(_ queues: VirtioQueueSet, link: VirtioDeviceLink) throws(VirtqueueError) {
        guard queues.isReady(Self.receiveQueue), queues.isReady(Self.transmitQueue) else {
            throw .malformedRequest(detail: "virtio-net needs its receive and transmit queues")
        }
        setOffloads(Self.offloads(for: queues.features))
        self.link = link
        startWatching()
    }

    public func process(queue: Int, in queues: VirtioQueueSet) throws(VirtqueueError) {
        switch queue {
        case Self.receiveQueue:
            // New buffers: frames may flow again.
            startWatching()
            try receive(queues)
        case Self.transmitQueue:
            try transmit(queues)
        default:
            return
        }
    }

    public func reset() {
        stopWatching()
        link = nil
        heldReceive = nil
        setOffloads([])
    }

    // MARK: Frames

    private func startWatching() {
        guard !watching, let link, let loop = link.eventLoop else { return }
        do {
            try loop.register(fd: fileDescriptor, events: .readable) { [weak self] _ in
                link.perform { queues throws(VirtqueueError) in try self?.receive(queues) }
            }
            watching = true
        } catch {
            counters.withLock { $0.lastError = "\(name): cannot watch the tap: \(error)" }
        }
    }

    private func stopWatching() {
        guard watching, let loop = link?.eventLoop else { return }
        try? loop.unregister(fd: fileDescriptor)
        watching = false
    }

    /// Moves waiting frames from the tap into the guest's receive buffers.
    func receive(_ queues: VirtioQueueSet) throws(VirtqueueError) {
        var frames: UInt64 = 0
        var bytes: UInt64 = 0
        defer {
            counters.withLock {
                $0.framesReceived += frames
                $0.bytesReceived += bytes
            }
        }
        while frames < Self.batch {
            var next = heldReceive
            if next == nil { next = try queues.pop(Self.receiveQueue) }
            guard let chain = next else {
                // No buffers: leave frames in the tap until the driver adds some.
                stopWatching()
                break
            }
            guard chain.writableLength >= Self.headerSize else {
                throw .malformedRequest(detail: "virtio-net receive buffer of \(chain.writableLength) bytes (at least 12 needed)")
            }
            heldReceive = chain
            let count: Int
            do {
                count = try queues.memory.read(
                    from: fileDescriptor, into: chain.writable.slice(skipping: 0, limit: Self.headerSize + Self.maximumFrame))
            } catch {
                guard case .hostIOFailed(_, let code) = error else { throw .memory(error) }
                if code != EAGAIN && code != EWOULDBLOCK {
                    // The tap is gone or broken: stop rather than spin on it.
                    stopWatching()
                    counters.withLock { $0.lastError = "\(name): reading the tap failed: errno \(code)" }
                }
                break
            }
            heldReceive = nil
            if count >= Int(Self.headerSize) {
                // num_buffers: always one chain without MRG_RXBUF.
                do { try chain.writable.slice(skipping: 10, limit: 2).write(LittleEndian.bytes(UInt16(1)), to: queues.memory) } catch {
                    throw .memory(error)
                }
            }
            try queues.push(Self.receiveQueue, head: chain.head, written: UInt32(count))
            frames += 1
            bytes += UInt64(max(count - Int(Self.headerSize), 0))
        }
        if frames > 0 { try queues.notify(Self.receiveQueue) }
    }

    /// Writes the guest's frames to the tap, header included.
    private func transmit(_ queues: VirtioQueueSet) throws(VirtqueueError) {
        var frames: UInt64 = 0
        var bytes: UInt64 = 0
        var dropped: UInt64 = 0
        var failure: String?
        while let chain = try queues.pop(Self.transmitQueue) {
            let length = chain.readableLength
            guard length >= Self.headerSize else {
                throw .malformedRequest(detail: "virtio-net frame of \(length) bytes (the 12-byte header is missing)")
            }
            if length > Self.headerSize + Self.maximumFrame {
                dropped += 1
            } else {
                do {
                    _ = try queues.memory.write(to: fileDescriptor, from: chain.readable)
                    frames += 1
                    bytes += length - Self.headerSize
                } catch {
                    // The tap refused it (link down, a header it rejects, a full queue): a lost frame, as on a wire.
                    guard case .hostIOFailed(_, let code) = error else { throw .memory(error) }
                    dropped += 1
                    failure = "\(name): writing to the tap failed: errno \(code)"
                }
            }
            try queues.push(Self.transmitQueue, head: chain.head, written: 0)
        }
        counters.withLock {
            $0.framesSent += frames
            $0.bytesSent += bytes
            $0.sendDropped += dropped
            if let failure { $0.lastError = failure }
        }
        try queues.notify(Self.transmitQueue)
    }
}

extension VirtioNet {
    /// What a snapshot keeps beyond the transport's queues: a receive chain
    /// the device had taken but not filled (otherwise lost to the guest).
    public struct State: Hashable, Sendable, Codable {
        public var heldReceiveHead: UInt16?
        public var heldReceiveBuffers: [GuestRange]

        public init(heldReceiveHead: UInt16?, heldReceiveBuffers: [GuestRange]) {
            self.heldReceiveHead = heldReceiveHead
            self.heldReceiveBuffers = heldReceiveBuffers
        }
    }

    /// The device's state; the I/O thread must not run meanwhile.
    public var state: State { State(heldReceiveHead: heldReceive?.head, heldReceiveBuffers: heldReceive?.writable ?? []) }

    /// Puts a saved state back, before the transport's (which re-activates
    /// the device). The buffers are checked against RAM when used.
    public func restore(_ state: State) throws(DeviceStateError) {
        guard let head = state.heldReceiveHead else {
            heldReceive = nil
            return
        }
        guard head < Self.queueSize else {
            throw DeviceStateError(
                device: "VirtioNet", field: "heldReceiveHead", problem: .outOfRange(value: Int(head), valid: 0...Int(Self.queueSize) - 1))
        }
        guard state.heldReceiveBuffers.count <= GuestMemoryView.maximumSegments else {
            throw DeviceStateError(
                device: "VirtioNet", field: "heldReceiveBuffers",
                problem: .tooLong(count: state.heldReceiveBuffers.count, maximum: GuestMemoryView.maximumSegments))
        }
        heldReceive = DescriptorChain(head: head, readable: [], writable: state.heldReceiveBuffers)
    }
}
