import GuestMemory
import Synchronization
import Virtio

/// A virtio console (virtio 1.2, section 5.3) with one port, `hvc0` in a
/// Linux guest: a second console next to COM1, without a UART's exit per byte.
///
/// Host input waits in a bounded buffer until the driver offers receive
/// buffers; beyond `maximumPendingInput` bytes, input is dropped and counted.
public final class VirtioConsole: VirtioDevice, @unchecked Sendable {
    /// Queues: receive (host to guest), transmit (guest to host).
    static let receiveQueue = 0
    static let transmitQueue = 1
    /// The most host input held while the guest offers no buffers.
    public static let maximumPendingInput = 64 << 10
    /// The most bytes taken from one transmit request.
    static let maximumTransmit = 64 << 10

    public let type = VirtioDeviceType.console
    public let queueSizes: [UInt16] = [256, 256]
    public let features = VirtioFeatures()
    /// `struct virtio_console_config`: cols, rows (unset), max_nr_ports 1, emerg_wr.
    public let configuration: [UInt8] = [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    public let backend: any VirtioConsoleBackend
    private let pending = Mutex<[UInt8]>([])
    private let droppedInput = Atomic<Int>(0)
    private var started = false

    /// Host input bytes dropped because the guest did not read them in time.
    public var droppedBytes: Int { droppedInput.load(ordering: .relaxed) }

    public init(backend: any VirtioConsoleBackend) { self.backend = backend }

    public func writeConfiguration(at offset: Int, bytes: [UInt8]) {
        // emerg_wr: one character written without a queue.
        if offset == 8, let first = bytes.first { backend.write([first]) }
    }

    public func activate(_ queues: VirtioQueueSet, link: VirtioDeviceLink) throws(VirtqueueError) {
        guard !started, let loop = link.eventLoop else { return }
        started = true
        backend.start(on: loop) { [weak self] bytes in
            guard let self else { return }
            self.pending.withLock { pending in
                let room = Self.maximumPendingInput - pending.count
                pending += bytes.prefix(max(0, room))
                if bytes.count > room { self.droppedInput.add(bytes.count - max(0, room), ordering: .relaxed) }
            }
            link.perform { queues throws(VirtqueueError) in try self.fillReceiveBuffers(queues) }
        }
    }

    public func reset() {}

    public func process(queue: Int, in queues: VirtioQueueSet) throws(VirtqueueError) {
        switch queue {
        case Self.transmitQueue:
            while let chain = try queues.pop(Self.transmitQueue) {
                let count = Int(min(UInt64(Self.maximumTransmit), chain.readableLength))
                do { backend.write(try chain.readable.read(count: count, from: queues.memory)) } catch { throw .memory(error) }
                try queues.push(Self.transmitQueue, head: chain.head, written: 0)
            }
            try queues.notify(Self.transmitQueue)
        case Self.receiveQueue:
            try fillReceiveBuffers(queues)
        default: break
        }
    }

    /// Moves pending host input into the driver's receive buffers.
    func fillReceiveBuffers(_ queues: VirtioQueueSet) throws(VirtqueueError) {
        var delivered = false
        while pending.withLock({ !$0.isEmpty }), let chain = try queues.pop(Self.receiveQueue) {
            let chunk = pending.withLock { pending in
                let count = Int(min(UInt64(pending.count), chain.writableLength))
                defer { pending.removeFirst(count) }
                return Array(pending[..<count])
            }
            let written: Int
            do { written = try chain.writable.write(chunk, to: queues.memory) } catch { throw .memory(error) }
            try queues.push(Self.receiveQueue, head: chain.head, written: UInt32(written))
            delivered = true
        }
        if delivered { try queues.notify(Self.receiveQueue) }
    }
}
