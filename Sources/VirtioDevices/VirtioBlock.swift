import GuestMemory
import Synchronization
import VMCore
import Virtio

#if canImport(Glibc)
    import Glibc
#endif

/// A virtio-blk disk (virtio 1.2, section 5.2) on a raw image file: read,
/// write, flush, get-id, discard and write-zeroes, read-only on request.
///
/// Requests run on the I/O thread, straight between the file and the
/// guest's buffers (`preadv`/`pwritev`), one queue, completed in order and
/// the driver notified once per batch.
public final class VirtioBlock: VirtioDevice, @unchecked Sendable {
    /// Request types.
    enum RequestType: UInt32 {
        case read = 0, write = 1, flush = 4, getID = 8, discard = 11, writeZeroes = 13
    }

    /// Status bytes.
    static let statusOK: UInt8 = 0
    static let statusIOError: UInt8 = 1
    static let statusUnsupported: UInt8 = 2

    /// Feature bits (virtio 1.2, 5.2.3).
    static let sizeMaximum = VirtioFeatures(bit: 1)
    static let segmentMaximum = VirtioFeatures(bit: 2)
    static let readOnly = VirtioFeatures(bit: 5)
    static let blockSize = VirtioFeatures(bit: 6)
    static let flush = VirtioFeatures(bit: 9)
    static let discard = VirtioFeatures(bit: 13)
    static let writeZeroes = VirtioFeatures(bit: 14)

    /// The size of a request header: type, reserved, sector.
    static let headerSize: UInt64 = 16
    /// The size of a discard or write-zeroes segment.
    static let segmentSize: UInt64 = 16
    /// The most segments one discard or write-zeroes request may carry.
    static let maximumZeroSegments: UInt32 = 64
    /// The most buffers one request may carry (the queue size, less header and status).
    static let maximumSegments: UInt32 = 126
    /// The most sectors one discard or write-zeroes segment may cover (1 GiB).
    static let maximumZeroSectors: UInt32 = 1 << 21
    /// The length of the identifier get-id returns.
    static let idLength = 20

    public let type = VirtioDeviceType.block
    public let queueSizes: [UInt16] = [256]
    public let image: BlockImage
    /// What get-id returns: up to 20 bytes, NUL-padded.
    public let identifier: String

    /// Counters, for statistics and metrics.
    public struct Statistics: Hashable, Sendable, Codable {
        public var readRequests = 0
        public var writeRequests = 0
        public var flushRequests = 0
        public var otherRequests = 0
        public var bytesRead: UInt64 = 0
        public var bytesWritten: UInt64 = 0
        public var failedRequests = 0
    }
    private let counters = Mutex(Statistics())
    public var statistics: Statistics { counters.withLock { $0 } }

    /// A disk on `image`; `identifier` (default: the file's name) is what get-id answers.
    public init(image: BlockImage, identifier: String? = nil) {
        self.image = image
        let name = identifier ?? String(image.path.split(separator: "/").last ?? "")
        self.identifier = String(name.utf8.prefix(Self.idLength)) ?? ""
    }

    public var features: VirtioFeatures {
        var features: VirtioFeatures = [Self.segmentMaximum, Self.blockSize, Self.flush]
        if image.isReadOnly { features.insert(Self.readOnly) } else { features.formUnion([Self.discard, Self.writeZeroes]) }
        return features
    }

    /// `struct virtio_blk_config` up to write_zeroes_may_unmap.
    public var configuration: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 60)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            for i in 0..<MemoryLayout<T>.size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
        }
        put(image.sectorCount, at: 0)  // capacity
        put(Self.maximumSegments, at: 12)  // seg_max
        put(UInt32(BlockImage.sectorSize), at: 20)  // blk_size
        put(UInt16(1), at: 34)  // num_queues
        put(Self.maximumZeroSectors, at: 36)  // max_discard_sectors
        put(Self.maximumZeroSegments, at: 40)  // max_discard_seg
        put(UInt32(1), at: 44)  // discard_sector_alignment
        put(Self.maximumZeroSectors, at: 48)  // max_write_zeroes_sectors
        put(Self.maximumZeroSegments, at: 52)  // max_write_zeroes_seg
        bytes[56] = 1  // write_zeroes_may_unmap
        return bytes
    }

    public func activate(_ queues: VirtioQueueSet, link: VirtioDeviceLink) throws(VirtqueueError) {
        guard queues.isReady(0) else { throw .malformedRequest(detail: "virtio-blk needs its request queue") }
    }

    public func reset() {}

    public func process(queue: Int, in queues: VirtioQueueSet) throws(VirtqueueError) {
        guard queue == 0 else { return }
        var completed = 0
        while let chain = try queues.pop(0) {
            let written = try handle(chain, memory: queues.memory)
            try queues.push(0, head: chain.head, written: written)
            completed += 1
            // Let the driver start on what is done while a long batch goes on.
            if completed % 64 == 0 { try queues.notify(0) }
        }
        try queues.notify(0)
    }

    /// Carries out one request and writes its status byte; returns the bytes
    /// written into the guest's buffers. A chain without room for the status
    /// byte cannot be answered, so it is the driver's error.
    func handle(_ chain: DescriptorChain, memory: GuestMemoryView) throws(VirtqueueError) -> UInt32 {
        guard chain.writableLength >= 1, let statusRange = chain.writable.slice(skipping: chain.writableLength - 1).first else {
            throw .malformedRequest(detail: "virtio-blk request without a status byte")
        }
        let header: [UInt8]
        do { header = try chain.readable.read(count: Int(Self.headerSize), from: memory) } catch { throw .memory(error) }
        var status = Self.statusOK
        var dataWritten: UInt64 = 0
        if header.count < Int(Self.headerSize) {
            status = Self.statusIOError
        } else {
            let rawType = UInt32(littleEndian: header.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
            let sector = UInt64(littleEndian: header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self) })
            let payloadIn = chain.readable.slice(skipping: Self.headerSize)
            let payloadOut = chain.writable.slice(skipping: 0, limit: chain.writableLength - 1)
            (status, dataWritten) = perform(
                RequestType(rawValue: rawType), sector: sector, from: payloadIn, into: payloadOut, memory: memory)
        }
        do { try memory.writeInteger(status, at: statusRange.address) } catch { throw .memory(error) }
        if status != Self.statusOK { counters.withLock { $0.failedRequests += 1 } }
        return UInt32(truncatingIfNeeded: dataWritten + 1)
    }

    /// The request's status and the bytes it put in the guest's buffers.
    private func perform(
        _ type: RequestType?, sector: UInt64, from payloadIn: [GuestRange], into payloadOut: [GuestRange], memory: GuestMemoryView
    ) -> (UInt8, UInt64) {
        switch type {
        case .read:
            let length = payloadOut.totalLength
            guard let offset = byteRange(sector: sector, length: length) else { return (Self.statusIOError, 0) }
            do {
                let done = try memory.read(from: image.descriptor(for: payloadOut), at: offset, into: payloadOut)
                counters.withLock {
                    $0.readRequests += 1
                    $0.bytesRead += UInt64(done)
                }
                // The image's size is fixed, so a short read means it shrank under us.
                return (UInt64(done) == length ? Self.statusOK : Self.statusIOError, UInt64(done))
            } catch { return (Self.statusIOError, 0) }
        case .write:
            guard !image.isReadOnly else { return (Self.statusIOError, 0) }
            let length = payloadIn.totalLength
            guard let offset = byteRange(sector: sector, length: length) else { return (Self.statusIOError, 0) }
            do {
                let done = try memory.write(to: image.descriptor(for: payloadIn), at: offset, from: payloadIn)
                counters.withLock {
                    $0.writeRequests += 1
                    $0.bytesWritten += UInt64(done)
                }
                return (UInt64(done) == length ? Self.statusOK : Self.statusIOError, 0)
            } catch { return (Self.statusIOError, 0) }
        case .flush:
            counters.withLock { $0.flushRequests += 1 }
            return (image.isReadOnly || image.flush() == 0 ? Self.statusOK : Self.statusIOError, 0)
        case .getID:
            var id = Array(identifier.utf8)
            id += [UInt8](repeating: 0, count: max(0, Self.idLength - id.count))
            let count = Int(min(UInt64(Self.idLength), payloadOut.totalLength))
            do {
                let done = try payloadOut.write(Array(id.prefix(count)), to: memory)
                counters.withLock { $0.otherRequests += 1 }
                return (Self.statusOK, UInt64(done))
            } catch { return (Self.statusIOError, 0) }
        case .discard, .writeZeroes:
            guard !image.isReadOnly else { return (Self.statusIOError, 0) }
            counters.withLock { $0.otherRequests += 1 }
            return (zero(segmentsIn: payloadIn, discard: type == .discard, memory: memory), 0)
        case nil:
            return (Self.statusUnsupported, 0)
        }
    }

    /// The byte offset of `sector` when `[sector, sector + length)` lies in the image.
    private func byteRange(sector: UInt64, length: UInt64) -> UInt64? {
        let (offset, overflow) = sector.multipliedReportingOverflow(by: BlockImage.sectorSize)
        guard !overflow, offset <= image.size, length <= image.size - offset else { return nil }
        return offset
    }

    /// Discard and write-zeroes: each segment is a hole (discard, or
    /// write-zeroes with the unmap flag) or zeroed in place.
    private func zero(segmentsIn payload: [GuestRange], discard: Bool, memory: GuestMemoryView) -> UInt8 {
        let length = payload.totalLength
        guard length > 0, length % Self.segmentSize == 0, length / Self.segmentSize <= UInt64(Self.maximumZeroSegments) else {
            return Self.statusIOError
        }
        let bytes: [UInt8]
        do { bytes = try payload.read(count: Int(length), from: memory) } catch { return Self.statusIOError }
        for start in stride(from: 0, to: bytes.count, by: Int(Self.segmentSize)) {
            let segment = bytes[start..<start + Int(Self.segmentSize)]
            let sector = segment.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            let count = segment.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) }
            let flags = segment.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 12, as: UInt32.self)) }
            // Discard takes no flags; write-zeroes only the unmap bit.
            guard count <= Self.maximumZeroSectors, flags & ~(discard ? 0 : 1) == 0 else { return Self.statusUnsupported }
            let byteCount = UInt64(count) * BlockImage.sectorSize
            guard let offset = byteRange(sector: sector, length: byteCount) else { return Self.statusIOError }
            if byteCount > 0, image.zero(offset: offset, length: byteCount, deallocate: discard || flags & 1 != 0) != 0 {
                return Self.statusIOError
            }
        }
        return Self.statusOK
    }
}
