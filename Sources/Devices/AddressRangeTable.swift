/// The registered ranges of one bus, sorted by first address and never overlapping.
///
/// A VM has a handful of devices, so a sorted array searched by bisection is
/// both the simplest structure and one whose lookup never allocates.
struct AddressRangeTable<Device> {
    struct Entry {
        let first: UInt64
        let last: UInt64
        let device: Device
    }

    private(set) var entries: [Entry] = []

    /// Adds `device` for `first...last`, or throws the first range it would overlap.
    mutating func insert(_ device: Device, first: UInt64, last: UInt64) throws(BusError) {
        let index = firstIndex(after: first)
        // Entries are disjoint and sorted, so only the neighbours on either
        // side of the insertion point can overlap the new range.
        if index > 0, entries[index - 1].last >= first {
            throw .overlap(requested: first...last, existing: entries[index - 1].first...entries[index - 1].last)
        }
        if index < entries.count, entries[index].first <= last {
            throw .overlap(requested: first...last, existing: entries[index].first...entries[index].last)
        }
        entries.insert(Entry(first: first, last: last, device: device), at: index)
    }

    /// Removes every entry that shares an address with `first...last` and
    /// returns the devices removed, so a replacement can take their place.
    mutating func removeAll(overlapping first: UInt64, _ last: UInt64) -> [Device] {
        let removed = entries.filter { $0.first <= last && $0.last >= first }.map(\.device)
        entries.removeAll { $0.first <= last && $0.last >= first }
        return removed
    }

    /// The entry whose range contains `address`.
    func lookup(_ address: UInt64) -> Entry? {
        let index = firstIndex(after: address)
        guard index > 0 else { return nil }
        let entry = entries[index - 1]
        return address <= entry.last ? entry : nil
    }

    /// The index of the first entry that starts after `address`.
    private func firstIndex(after address: UInt64) -> Int {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = low + (high - low) / 2
            if entries[middle].first <= address {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return low
    }
}
