import Virtio

/// A device for testing the transport: one queue whose requests' readable
/// bytes are copied into their writable buffers.
final class EchoDevice: VirtioDevice, @unchecked Sendable {
    let type = VirtioDeviceType.console
    let queueSizes: [UInt16] = [16]
    let features = VirtioFeatures(bit: 3)
    var configuration: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
    var activations = 0
    var resets = 0
    var configurationWrites: [(Int, [UInt8])] = []

    func writeConfiguration(at offset: Int, bytes: [UInt8]) {
        configurationWrites.append((offset, bytes))
        for (i, byte) in bytes.enumerated() { configuration[offset + i] = byte }
    }

    func activate(_ queues: VirtioQueueSet, link: VirtioDeviceLink) throws(VirtqueueError) { activations += 1 }
    func reset() { resets += 1 }

    func process(queue: Int, in queues: VirtioQueueSet) throws(VirtqueueError) {
        while let chain = try queues.pop(queue) {
            let count = Int(min(chain.readableLength, chain.writableLength))
            let bytes: [UInt8]
            do { bytes = try chain.readable.read(count: count, from: queues.memory) } catch { throw .memory(error) }
            do { try chain.writable.write(bytes, to: queues.memory) } catch { throw .memory(error) }
            try queues.push(queue, head: chain.head, written: UInt32(count))
        }
        try queues.notify(queue)
    }
}

/// Counts interrupts.
final class CountingInterrupt: VirtioInterrupt, @unchecked Sendable {
    var count = 0
    func trigger() { count += 1 }
}
