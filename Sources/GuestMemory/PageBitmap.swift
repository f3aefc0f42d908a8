/// A set of page indices `0..<count`, one bit per page in 64-bit words: bit
/// `i % 64` of word `i / 64` is page `i`, the layout `KVM_GET_DIRTY_LOG` uses.
struct PageBitmap {
    private(set) var words: [UInt64]
    let count: Int

    init(count: Int) {
        self.count = count
        words = [UInt64](repeating: 0, count: (count + 63) / 64)
    }

    /// Adopts `words` for `count` pages, or `nil` if there are more words than
    /// the pages need or a bit names a page at or past `count`.
    init?(words: [UInt64], count: Int) {
        guard words.count <= (count + 63) / 64 else { return nil }
        if let last = words.indices.last, words.count == (count + 63) / 64, count % 64 != 0,
            words[last] >> UInt64(count % 64) != 0
        {
            return nil
        }
        self.count = count
        self.words = words + [UInt64](repeating: 0, count: (count + 63) / 64 - words.count)
    }

    mutating func insert(_ page: Int) {
        words[page / 64] |= 1 << UInt64(page % 64)
    }

    /// Inserts `pages`, clamped to `0..<count`.
    mutating func insert(_ pages: Range<Int>) {
        let pages = pages.clamped(to: 0..<count)
        var page = pages.lowerBound
        while page < pages.upperBound {
            if page % 64 == 0, pages.upperBound - page >= 64 {
                words[page / 64] = .max
                page += 64
            } else {
                insert(page)
                page += 1
            }
        }
    }

    /// Removes every page that is in `other` (of the same count).
    mutating func subtract(_ other: PageBitmap) {
        for i in words.indices { words[i] &= ~other.words[i] }
    }

    func contains(_ page: Int) -> Bool {
        words[page / 64] & (1 << UInt64(page % 64)) != 0
    }

    /// How many pages are in the set.
    var population: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// The set as maximal runs of consecutive pages, in ascending order.
    /// Empty words are skipped whole, so a sparse 4 GiB bitmap costs 16 Ki word tests.
    var runs: [Range<Int>] {
        var result: [Range<Int>] = []
        var start: Int?
        for (index, word) in words.enumerated() {
            if word == 0 || word == .max {
                // A whole word in or out extends or ends the current run without testing bits.
                if word == 0, let open = start {
                    result.append(open..<(index * 64))
                    start = nil
                } else if word == .max, start == nil {
                    start = index * 64
                }
                continue
            }
            for bit in 0..<64 {
                let page = index * 64 + bit
                if word & (1 << UInt64(bit)) != 0 {
                    if start == nil { start = page }
                } else if let open = start {
                    result.append(open..<page)
                    start = nil
                }
            }
        }
        if let open = start { result.append(open..<count) }
        return result
    }
}
