import VMCore

/// The guest-physical MMIO space and the devices registered on it.
///
/// An access goes to the device whose range contains its first byte, with the
/// offset from that device's base. Addresses no device claims read as all
/// ones and ignore writes; they are counted and reported per 4 KiB page, so
/// the caller can log the first miss on a page loudly and the rest quietly.
///
/// Not thread-safe: the machine serialises guest accesses to its buses.
public final class MMIOBus {
    /// The granule in which unclaimed accesses are reported: an x86 page,
    /// the unit a guest maps and a device region is usually sized in.
    public static let missGranule: UInt64 = 4096

    private var table = AddressRangeTable<any MMIODevice>()
    /// Page numbers (address / 4096) already reported as unclaimed. Only the
    /// first miss on a page inserts, so repeated misses do not allocate.
    private var missedPages = Set<UInt64>()

    /// The number of reads that no device answered.
    public private(set) var unclaimedReads = 0
    /// The number of writes that no device took.
    public private(set) var unclaimedWrites = 0

    /// An empty MMIO space.
    public init() {}

    /// Puts `device` at `base..<base + length`.
    ///
    /// Throws `BusError.zeroLength` for an empty range, `.wrapsAround` for one
    /// that runs past 2^64 - 1, and `.overlap` naming the first registered
    /// range it shares an address with. Adjacent ranges are fine.
    public func register(_ device: any MMIODevice, at base: GuestAddress, length: UInt64) throws(BusError) {
        guard length > 0 else { throw .zeroLength(base: base.rawValue) }
        // The last byte is base + length - 1, which must itself be addressable.
        let (last, overflow) = base.rawValue.addingReportingOverflow(length - 1)
        guard !overflow else {
            throw .wrapsAround(base: base.rawValue, length: length, lastAddress: .max)
        }
        try table.insert(device, first: base.rawValue, last: last)
    }

    /// Takes every device that uses any address in `base..<base + length` off
    /// the bus and returns them.
    @discardableResult
    public func unregister(overlapping base: GuestAddress, length: UInt64) -> [any MMIODevice] {
        guard length > 0 else { return [] }
        let (last, overflow) = base.rawValue.addingReportingOverflow(length - 1)
        return table.removeAll(overlapping: base.rawValue, overflow ? .max : last)
    }

    /// A guest read of `size` (1 to 8) bytes at `address`.
    public func read(address: GuestAddress, size: Int) -> BusReadResult {
        let mask = AccessWidth.mask(size: size)
        guard let entry = table.lookup(address.rawValue) else {
            unclaimedReads &+= 1
            return BusReadResult(value: mask, unclaimed: noteMissed(address))
        }
        let value = entry.device.read(offset: address.rawValue - entry.first, size: size)
        return BusReadResult(value: value & mask, unclaimed: .no)
    }

    /// A guest write of the low `size` (1 to 8) bytes of `value` at `address`.
    public func write(address: GuestAddress, size: Int, value: UInt64) -> BusWriteResult {
        guard let entry = table.lookup(address.rawValue) else {
            unclaimedWrites &+= 1
            return BusWriteResult(request: nil, unclaimed: noteMissed(address))
        }
        let request = entry.device.write(
            offset: address.rawValue - entry.first, size: size, value: value & AccessWidth.mask(size: size))
        return BusWriteResult(request: request, unclaimed: .no)
    }

    /// Records a miss on the page holding `address` and says whether it was the first.
    private func noteMissed(_ address: GuestAddress) -> UnclaimedAccess {
        let page = address.rawValue / Self.missGranule
        if missedPages.contains(page) { return .again }
        missedPages.insert(page)
        return .firstTime
    }
}
