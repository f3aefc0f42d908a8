import GuestMemory
import VMCore

/// What a driver did wrong with a queue. Each puts the device in
/// `NEEDS_RESET` (the specification's answer to a broken driver) and is
/// reported once; none can crash the VMM or make it loop.
public enum VirtqueueError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The queue's rings do not lie in guest RAM, or its size is not a power of two up to the maximum.
    case invalidLayout(detail: String)
    /// The available index ran more than a queue's worth ahead of what the device has taken.
    case availableIndexJumped(available: UInt16, taken: UInt16, size: UInt16)
    /// A chain's head or next index is outside the descriptor table.
    case descriptorIndexOutOfRange(index: UInt16, size: UInt16)
    /// A chain has more descriptors than its table holds: a loop.
    case chainTooLong(limit: Int)
    /// An indirect table's length is zero, not a multiple of 16, or larger than allowed.
    case invalidIndirectTable(length: UInt32)
    /// An indirect descriptor inside an indirect table, or one with `NEXT` set too.
    case nestedIndirect
    /// A device-readable buffer after a device-writable one.
    case readableAfterWritable
    /// A buffer or ring is not inside guest RAM.
    case memory(GuestMemoryError)
    /// A chain's buffers are the wrong shape for the device's request.
    case malformedRequest(detail: String)

    public var description: String {
        switch self {
        case .invalidLayout(let detail): return "queue layout: \(detail)"
        case .availableIndexJumped(let available, let taken, let size):
            return "available index \(available) is more than \(size) entries past \(taken)"
        case .descriptorIndexOutOfRange(let index, let size): return "descriptor index \(index) is outside a table of \(size)"
        case .chainTooLong(let limit): return "descriptor chain longer than \(limit) (a loop?)"
        case .invalidIndirectTable(let length): return "indirect descriptor table of \(length) bytes"
        case .nestedIndirect: return "indirect descriptor inside an indirect table, or with NEXT set"
        case .readableAfterWritable: return "device-readable buffer after a device-writable one"
        case .memory(let error): return "guest memory: \(error)"
        case .malformedRequest(let detail): return "malformed request: \(detail)"
        }
    }
}
