import VMCore

/// Every exit a `TestVM` saw, in order, with what was done about it; the most
/// recent ones are printed when a test fails.
public struct ExitTrace: Sendable, CustomStringConvertible {
    public struct Entry: Sendable, CustomStringConvertible {
        /// 1 for the first exit of the VM.
        public var index: Int
        public var exit: VMExit
        /// What the test or the default handling did with it.
        public var note: String

        public var description: String { "#\(index) \(exit)\(note.isEmpty ? "" : " -> \(note)")" }
    }

    /// How many entries are kept; older ones are dropped (the count goes on).
    public let capacity: Int
    public private(set) var entries: [Entry] = []
    /// The number of exits seen, including dropped ones.
    public private(set) var count = 0

    public init(capacity: Int = 10_000) { self.capacity = capacity }

    mutating func append(_ exit: VMExit) {
        count += 1
        if entries.count == capacity { entries.removeFirst(capacity / 10) }
        entries.append(Entry(index: count, exit: exit, note: ""))
    }

    mutating func annotateLast(_ note: String) {
        guard !entries.isEmpty else { return }
        entries[entries.count - 1].note = note
    }

    /// The last `n` entries, one per line.
    public func tail(_ n: Int = 20) -> String {
        entries.suffix(n).map(\.description).joined(separator: "\n")
    }

    public var description: String { tail(entries.count) }
}
