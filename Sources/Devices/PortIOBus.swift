import VMCore

/// The x86 I/O port space (0x0000-0xffff) and the devices registered on it.
///
/// An access goes to the device whose range contains its first port, with the
/// offset from that device's base; the device decides what a wide access at
/// its last ports means. Ports no device claims read as all ones, the value a
/// floating ISA bus returns, and ignore writes. Unclaimed accesses are counted
/// and reported to the caller, which does the logging.
///
/// Not thread-safe: the machine serialises guest accesses to its buses.
public final class PortIOBus {
    /// The last port of the space.
    public static let lastPort: UInt16 = 0xffff

    private var table = AddressRangeTable<any PortIODevice>()
    /// One bit per port, set once an unclaimed access has been reported, so
    /// that telling "first time" from "again" never allocates.
    private var missedPorts = [UInt64](repeating: 0, count: (Int(lastPort) + 1) / 64)

    /// The number of reads (each element of a string read counts) that no device answered.
    public private(set) var unclaimedReads = 0
    /// The number of writes (each element of a string write counts) that no device took.
    public private(set) var unclaimedWrites = 0

    /// An empty port space.
    public init() {}

    /// Puts `device` at ports `base..<base + length`.
    ///
    /// Throws `BusError.zeroLength` for an empty range, `.wrapsAround` for one
    /// that runs past port 0xffff, and `.overlap` naming the first registered
    /// range it shares a port with. Adjacent ranges are fine.
    public func register(_ device: any PortIODevice, at base: UInt16, length: UInt16) throws(BusError) {
        guard length > 0 else { throw .zeroLength(base: UInt64(base)) }
        let last = UInt64(base) + UInt64(length) - 1
        guard last <= UInt64(Self.lastPort) else {
            throw .wrapsAround(base: UInt64(base), length: UInt64(length), lastAddress: UInt64(Self.lastPort))
        }
        try table.insert(device, first: UInt64(base), last: last)
    }

    /// Takes every device that uses any of the ports `base..<base + length`
    /// off the bus (whole devices, even if they also use other ports) and
    /// returns them. Used to put a scripted or replacement device in their place.
    @discardableResult
    public func unregister(overlapping base: UInt16, length: UInt16) -> [any PortIODevice] {
        guard length > 0 else { return [] }
        return table.removeAll(overlapping: UInt64(base), min(UInt64(base) + UInt64(length) - 1, UInt64(Self.lastPort)))
    }

    /// A guest `in` of `size` (1, 2 or 4) bytes from `port`.
    public func read(port: UInt16, size: Int) -> BusReadResult {
        let mask = AccessWidth.mask(size: size)
        guard let entry = table.lookup(UInt64(port)) else {
            unclaimedReads &+= 1
            return BusReadResult(value: mask, unclaimed: noteMissed(port))
        }
        let value = entry.device.read(offset: UInt16(truncatingIfNeeded: UInt64(port) - entry.first), size: size)
        return BusReadResult(value: value & mask, unclaimed: .no)
    }

    /// A guest `out` of the low `size` (1, 2 or 4) bytes of `value` to `port`.
    public func write(port: UInt16, size: Int, value: UInt64) -> BusWriteResult {
        guard let entry = table.lookup(UInt64(port)) else {
            unclaimedWrites &+= 1
            return BusWriteResult(request: nil, unclaimed: noteMissed(port))
        }
        let request = entry.device.write(
            offset: UInt16(truncatingIfNeeded: UInt64(port) - entry.first), size: size,
            value: value & AccessWidth.mask(size: size))
        return BusWriteResult(request: request, unclaimed: .no)
    }

    /// A guest `rep outs`: `count` writes of `size` bytes each to `port`,
    /// taken from `data` in order, as the CPU would make them one at a time.
    ///
    /// Stops at the first write that returns a request: the machine acts on
    /// an exit or reset before the guest could run its next iteration.
    /// An element `size` outside 1...8 (which no x86 instruction makes) writes nothing.
    public func writeString(port: UInt16, size: Int, count: Int, data: IOData) -> BusWriteResult {
        guard (1...8).contains(size) else { return BusWriteResult(request: nil, unclaimed: .no) }
        var unclaimed = UnclaimedAccess.no
        for index in 0..<max(count, 0) {
            let result = write(port: port, size: size, value: data.element(index, size: size))
            // Every element goes to the same port, so the first one says
            // whether this string access is the first to miss it.
            if index == 0 { unclaimed = result.unclaimed }
            if let request = result.request {
                return BusWriteResult(request: request, unclaimed: unclaimed)
            }
        }
        return BusWriteResult(request: nil, unclaimed: unclaimed)
    }

    /// A guest `rep ins`: `count` reads of `size` bytes each from `port`, in order.
    ///
    /// Up to 8 bytes in total are returned without allocating; longer strings
    /// build a byte array. An element `size` outside 1...8 reads nothing.
    public func readString(port: UInt16, size: Int, count: Int) -> BusStringReadResult {
        guard (1...8).contains(size), count > 0 else {
            return BusStringReadResult(data: IOData(value: 0, size: 0), unclaimed: .no)
        }
        let first = read(port: port, size: size)
        let total = size * count
        if total <= 8 {
            var value = first.value
            for index in 1..<count {
                value |= read(port: port, size: size).value << (UInt64(index * size) * 8)
            }
            return BusStringReadResult(data: IOData(value: value, size: total), unclaimed: first.unclaimed)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(total)
        Self.append(first.value, size: size, to: &bytes)
        for _ in 1..<count {
            Self.append(read(port: port, size: size).value, size: size, to: &bytes)
        }
        return BusStringReadResult(data: IOData(bytes: bytes), unclaimed: first.unclaimed)
    }

    private static func append(_ value: UInt64, size: Int, to bytes: inout [UInt8]) {
        for byte in 0..<size {
            bytes.append(UInt8(truncatingIfNeeded: value >> (UInt64(byte) * 8)))
        }
    }

    /// Records a miss on `port` and says whether it was the first.
    private func noteMissed(_ port: UInt16) -> UnclaimedAccess {
        let word = Int(port >> 6)
        let bit: UInt64 = 1 << UInt64(port & 0b11_1111)
        if missedPorts[word] & bit != 0 { return .again }
        missedPorts[word] |= bit
        return .firstTime
    }
}
