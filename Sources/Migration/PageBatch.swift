/// Guest pages on their way: runs of pages, each either all zeros (sent as a
/// marker, not 4 KiB of zeros) or with its data, which follows the runs in
/// their order. The payload of a `pages` message:
///
/// ```
/// offset  size  field
///      0     4  number of runs N, little-endian
///      4     4  reserved, zero
///      8  16*N  runs: guest-physical address (8, page-aligned), page count (4), kind (4: 0 zero, 1 data)
///      …     …  the data runs' pages, 4096 bytes each, in order
/// ```
public struct PageBatch: Equatable, Sendable {
    /// Consecutive pages of one kind.
    public struct Run: Hashable, Sendable {
        /// The guest-physical address of the first page.
        public var address: UInt64
        public var pageCount: UInt32
        /// Whether the pages' bytes follow (otherwise they are all zeros).
        public var hasData: Bool

        public init(address: UInt64, pageCount: UInt32, hasData: Bool) {
            self.address = address
            self.pageCount = pageCount
            self.hasData = hasData
        }
    }

    public private(set) var runs: [Run] = []
    /// The data runs' bytes, in order.
    public private(set) var data: [UInt8] = []

    public init() {}

    /// Pages of data the batch carries.
    public var dataPages: Int { data.count / MigrationWire.pageSize }
    /// Pages the batch covers, zero or not.
    public var pageCount: UInt64 { runs.reduce(0) { $0 + UInt64($1.pageCount) } }
    /// Whether the batch takes no more pages (of data, or runs).
    public var isFull: Bool { dataPages >= MigrationWire.maximumBatchDataPages || runs.count >= MigrationWire.maximumBatchEntries - 1 }
    public var isEmpty: Bool { runs.isEmpty }

    /// Adds `count` zero pages at `address`, joining the last run when it is zero pages ending there.
    public mutating func appendZero(address: UInt64, count: UInt32 = 1) {
        append(Run(address: address, pageCount: count, hasData: false))
    }

    /// Adds the page at `address`: `copy` appends the page's 4096 bytes to
    /// the array it is given and returns true (guest memory copies straight
    /// in), or appends nothing and returns false for a page of zeros, which
    /// goes as a marker. Returns whether the page had data.
    @discardableResult
    public mutating func appendPage<E: Error>(address: UInt64, _ copy: (inout [UInt8]) throws(E) -> Bool) throws(E) -> Bool {
        let before = data.count
        guard try copy(&data) else {
            precondition(data.count == before, "a zero page appends no bytes")
            appendZero(address: address)
            return false
        }
        precondition(data.count == before + MigrationWire.pageSize, "a data page is \(MigrationWire.pageSize) bytes")
        append(Run(address: address, pageCount: 1, hasData: true))
        return true
    }

    private mutating func append(_ run: Run) {
        if let last = runs.last, last.hasData == run.hasData, last.pageCount <= UInt32.max - run.pageCount,
            last.address &+ UInt64(last.pageCount) * UInt64(MigrationWire.pageSize) == run.address
        {
            runs[runs.count - 1].pageCount += run.pageCount
        } else {
            runs.append(run)
        }
    }

    /// The payload bytes.
    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + runs.count * 16 + data.count)
        WireBytes.append(UInt32(runs.count), to: &bytes)
        WireBytes.append(UInt32(0), to: &bytes)
        for run in runs {
            WireBytes.append(run.address, to: &bytes)
            WireBytes.append(run.pageCount, to: &bytes)
            WireBytes.append(UInt32(run.hasData ? 1 : 0), to: &bytes)
        }
        bytes.append(contentsOf: data)
        return bytes
    }

    /// Decodes and checks a payload: the run count, each run's alignment,
    /// kind and range, and that the data is exactly the data runs' pages.
    public init(decoding payload: ArraySlice<UInt8>) throws(MigrationWireError) {
        func malformed(_ reason: String) -> MigrationWireError { .malformed(message: "pages", reason: reason) }
        guard payload.count >= 8 else { throw malformed("\(payload.count) bytes, fewer than the 8 of the run count") }
        let count: UInt32 = WireBytes.integer(payload, at: 0)
        guard count <= MigrationWire.maximumBatchEntries else {
            throw malformed("\(count) runs, at most \(MigrationWire.maximumBatchEntries)")
        }
        let runBytes = Int(count) * 16
        guard payload.count >= 8 + runBytes else { throw malformed("\(count) runs need \(8 + runBytes) bytes, found \(payload.count)") }
        var dataPages = 0
        let page = UInt64(MigrationWire.pageSize)
        for i in 0..<Int(count) {
            let offset = 8 + i * 16
            let address: UInt64 = WireBytes.integer(payload, at: offset)
            let pages: UInt32 = WireBytes.integer(payload, at: offset + 8)
            let kind: UInt32 = WireBytes.integer(payload, at: offset + 12)
            guard address % page == 0 else { throw malformed("run \(i): address 0x\(String(address, radix: 16)) is not page-aligned") }
            guard pages > 0 else { throw malformed("run \(i): no pages") }
            guard kind <= 1 else { throw malformed("run \(i): kind \(kind), expected 0 (zero) or 1 (data)") }
            let (length, overflow) = UInt64(pages).multipliedReportingOverflow(by: page)
            guard !overflow, !address.addingReportingOverflow(length).overflow else {
                throw malformed("run \(i): \(pages) pages at 0x\(String(address, radix: 16)) pass the end of the address space")
            }
            if kind == 1 {
                dataPages += Int(pages)
                guard dataPages <= MigrationWire.maximumBatchDataPages else {
                    throw malformed("more than \(MigrationWire.maximumBatchDataPages) pages of data")
                }
            }
            runs.append(Run(address: address, pageCount: pages, hasData: kind == 1))
        }
        let dataBytes = payload.count - 8 - runBytes
        guard dataBytes == dataPages * MigrationWire.pageSize else {
            throw malformed("\(dataBytes) bytes of data for \(dataPages) pages of data")
        }
        data = Array(payload.suffix(dataBytes))
    }

    /// Each data run with its bytes, and each zero run, in order.
    public func forEachRun<E: Error>(_ body: (Run, ArraySlice<UInt8>?) throws(E) -> Void) throws(E) {
        var offset = 0
        for run in runs {
            if run.hasData {
                let length = Int(run.pageCount) * MigrationWire.pageSize
                try body(run, data[offset..<offset + length])
                offset += length
            } else {
                try body(run, nil)
            }
        }
    }
}
