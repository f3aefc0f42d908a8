/// `struct virtio_vsock_hdr` (virtio 1.2, 5.10.6): the 44 little-endian
/// bytes in front of every vsock packet.
struct VsockPacketHeader: Hashable, Sendable {
    static let size = 44
    /// The host's CID.
    static let hostCID: UInt64 = 2
    /// `VIRTIO_VSOCK_TYPE_STREAM`.
    static let streamType: UInt16 = 1

    enum Operation: UInt16 {
        case invalid = 0, request, response, reset, shutdown, readWrite, creditUpdate, creditRequest
    }

    /// SHUTDOWN flags.
    static let shutdownReceive: UInt32 = 1
    static let shutdownSend: UInt32 = 2

    var sourceCID: UInt64 = 0
    var destinationCID: UInt64 = 0
    var sourcePort: UInt32 = 0
    var destinationPort: UInt32 = 0
    var length: UInt32 = 0
    var type: UInt16 = streamType
    var operation: UInt16 = 0
    var flags: UInt32 = 0
    var bufferAllocation: UInt32 = 0
    var forwardCount: UInt32 = 0

    init() {}

    init(bytes: [UInt8]) {
        sourceCID = LittleEndian.read(UInt64.self, bytes, at: 0)
        destinationCID = LittleEndian.read(UInt64.self, bytes, at: 8)
        sourcePort = LittleEndian.read(UInt32.self, bytes, at: 16)
        destinationPort = LittleEndian.read(UInt32.self, bytes, at: 20)
        length = LittleEndian.read(UInt32.self, bytes, at: 24)
        type = LittleEndian.read(UInt16.self, bytes, at: 28)
        operation = LittleEndian.read(UInt16.self, bytes, at: 30)
        flags = LittleEndian.read(UInt32.self, bytes, at: 32)
        bufferAllocation = LittleEndian.read(UInt32.self, bytes, at: 36)
        forwardCount = LittleEndian.read(UInt32.self, bytes, at: 40)
    }

    var bytes: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.size)
        LittleEndian.write(sourceCID, into: &bytes, at: 0)
        LittleEndian.write(destinationCID, into: &bytes, at: 8)
        LittleEndian.write(sourcePort, into: &bytes, at: 16)
        LittleEndian.write(destinationPort, into: &bytes, at: 20)
        LittleEndian.write(length, into: &bytes, at: 24)
        LittleEndian.write(type, into: &bytes, at: 28)
        LittleEndian.write(operation, into: &bytes, at: 30)
        LittleEndian.write(flags, into: &bytes, at: 32)
        LittleEndian.write(bufferAllocation, into: &bytes, at: 36)
        LittleEndian.write(forwardCount, into: &bytes, at: 40)
        return bytes
    }
}
