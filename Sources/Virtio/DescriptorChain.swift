import GuestMemory
import VMCore

/// One request a driver made available: the buffers of a descriptor chain,
/// those the device reads first, then those it writes, each already checked
/// to lie in guest RAM.
public struct DescriptorChain: Hashable, Sendable {
    /// The head's index, which the device gives back in the used ring.
    public var head: UInt16
    /// The buffers the device reads, in order.
    public var readable: [GuestRange]
    /// The buffers the device writes, in order.
    public var writable: [GuestRange]

    public init(head: UInt16, readable: [GuestRange], writable: [GuestRange]) {
        self.head = head
        self.readable = readable
        self.writable = writable
    }

    /// The bytes the device may read.
    public var readableLength: UInt64 { readable.reduce(0) { $0 + $1.length } }
    /// The bytes the device may write.
    public var writableLength: UInt64 { writable.reduce(0) { $0 + $1.length } }
}

extension Array where Element == GuestRange {
    /// The ranges that cover bytes `skip..<skip+limit` of these ranges laid
    /// end to end (all of the rest without `limit`), for the payload after a
    /// request header or before a status byte.
    public func slice(skipping skip: UInt64, limit: UInt64? = nil) -> [GuestRange] {
        var result: [GuestRange] = []
        var toSkip = skip
        var remaining = limit ?? .max
        for range in self where remaining > 0 {
            if toSkip >= range.length {
                toSkip -= range.length
                continue
            }
            let length = Swift.min(range.length - toSkip, remaining)
            result.append(GuestRange(address: GuestAddress(range.address.rawValue + toSkip), length: length))
            remaining -= length
            toSkip = 0
        }
        return result
    }

    /// The total bytes.
    public var totalLength: UInt64 { reduce(0) { $0 + $1.length } }

    /// Copies up to `count` bytes from the start of these ranges out of guest RAM.
    public func read(count: Int, from memory: GuestMemoryView) throws(GuestMemoryError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        for range in slice(skipping: 0, limit: UInt64(count)) {
            bytes += try memory.read(count: Int(range.length), at: range.address)
        }
        return bytes
    }

    /// Copies `bytes` into these ranges from their start, as many as fit; returns how many did.
    @discardableResult
    public func write(_ bytes: [UInt8], to memory: GuestMemoryView) throws(GuestMemoryError) -> Int {
        var offset = 0
        for range in self where offset < bytes.count {
            let count = Swift.min(Int(clamping: range.length), bytes.count - offset)
            try memory.write(bytes[offset..<offset + count], at: range.address)
            offset += count
        }
        return offset
    }
}
