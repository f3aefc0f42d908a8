import GuestMemory
import VMCore

/// Guest memory at linear addresses, as an instruction the VMM carries out
/// sees it: each page translated by a `PageWalk` (every page checked before
/// any byte moves, as the CPU faults before it stores), then read or written
/// through the bounds-checked `GuestMemoryView`.
struct GuestLinearAccess {
    enum Failure: Error, Hashable, Sendable {
        /// The CPU would raise #PF at `linear` with `errorCode`.
        case pageFault(linear: UInt64, errorCode: UInt32)
        /// A page maps outside RAM (MMIO): not carried out.
        case outsideRAM
    }

    let memory: GuestMemoryView
    let walk: PageWalk

    /// The guest-physical address of each page `count` bytes from `address` touch, in order.
    func pages(_ address: UInt64, count: Int, write: Bool) throws(Failure) -> [UInt64] {
        var pages: [UInt64] = []
        var linear = address
        let end = address &+ UInt64(count)
        while linear < end || pages.isEmpty {
            let physical: UInt64
            do throws(PageWalk.Fault) {
                physical = try walk.translate(
                    linear, write: write,
                    readEntry: { address, size in
                        size == 8
                            ? try? memory.readInteger(at: GuestAddress(address), as: UInt64.self)
                            : (try? memory.readInteger(at: GuestAddress(address), as: UInt32.self)).map(UInt64.init)
                    },
                    writeEntry: { address, size, value in
                        if size == 8 {
                            try? memory.writeInteger(value, at: GuestAddress(address))
                        } else {
                            try? memory.writeInteger(UInt32(truncatingIfNeeded: value), at: GuestAddress(address))
                        }
                    })
            } catch { throw .pageFault(linear: linear, errorCode: error.errorCode) }
            let length = min(end - linear, GuestMemory.pageSize - linear % GuestMemory.pageSize)
            guard memory.contains(GuestAddress(physical), length: max(length, 1)) else { throw .outsideRAM }
            pages.append(physical)
            linear &+= length
            if length == 0 { break }
        }
        return pages
    }

    /// `count` bytes from `address`, whose pages `pages` returned.
    func read(_ pages: [UInt64], _ address: UInt64, count: Int) throws(Failure) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        try forEachPiece(pages, address, offset: 0, count: count) { (physical, length, _) throws(Failure) in
            do { bytes += try memory.read(count: length, at: GuestAddress(physical)) } catch { throw .outsideRAM }
        }
        return bytes
    }

    /// Writes `bytes` at `address + offset`; `pages` are those of the whole operand at `address`.
    func write(_ bytes: ArraySlice<UInt8>, _ pages: [UInt64], _ address: UInt64, offset: Int) throws(Failure) {
        try forEachPiece(pages, address, offset: offset, count: bytes.count) { (physical, length, done) throws(Failure) in
            let start = bytes.startIndex + done
            do { try memory.write(bytes[start..<start + length], at: GuestAddress(physical)) } catch { throw .outsideRAM }
        }
    }

    /// Calls `body(physical, length, bytesDone)` for each page-bounded piece of `[offset, offset + count)` of the operand.
    private func forEachPiece(
        _ pages: [UInt64], _ address: UInt64, offset: Int, count: Int, _ body: (UInt64, Int, Int) throws(Failure) -> Void
    ) throws(Failure) {
        let firstPage = address / GuestMemory.pageSize
        var done = 0
        while done < count {
            let linear = address &+ UInt64(offset + done)
            let page = Int(linear / GuestMemory.pageSize - firstPage)
            guard page < pages.count else { throw .outsideRAM }
            let inPage = linear % GuestMemory.pageSize
            let length = min(count - done, Int(GuestMemory.pageSize - inPage))
            // The first page's entry is the operand's own address; the others start at their page boundary.
            let pageBase = page == 0 ? pages[0] - address % GuestMemory.pageSize : pages[page]
            try body(pageBase + inPage, length, done)
            done += length
        }
    }
}
