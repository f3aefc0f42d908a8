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

        public var description: String { "#\(index) \(ExitTrace.describe(exit))\(note.isEmpty ? "" : " -> \(note)")" }
    }

    /// `exit` as a line of the trace: ports, addresses and data in hex,
    /// like every other number a failing test prints.
    public static func describe(_ exit: VMExit) -> String {
        func times(_ count: UInt32) -> String { count == 1 ? "" : " x\(count)" }
        switch exit {
        case .ioOut(let port, let size, let count, let data):
            return "OUT port \(hex(port)), \(size) byte\(size == 1 ? "" : "s")\(times(count)): \(data)"
        case .ioIn(let port, let size, let count):
            return "IN port \(hex(port)), \(size) byte\(size == 1 ? "" : "s")\(times(count))"
        case .mmioWrite(let address, let data): return "MMIO write \(hex(address.rawValue)): \(data)"
        case .mmioRead(let address, let size): return "MMIO read \(hex(address.rawValue)), \(size) byte\(size == 1 ? "" : "s")"
        case .debug(let info):
            let kind = info.exception == 3 ? "#BP (int3)" : "#DB (breakpoint or single step)"
            return "debug trap \(kind) at \(hex(info.pc)), dr6 \(hex(info.dr6))"
        case .failEntry(let reason, let cpu): return "fail entry, hardware reason \(hex(reason)), cpu \(cpu)"
        case .internalError(let suberror, let data): return "internal error, suberror \(suberror), data \(data.map { hex($0) })"
        case .unknown(let reason, let hardwareReason): return "unknown exit reason \(reason), hardware reason \(hex(hardwareReason))"
        default: return "\(exit)"
        }
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

    /// Adds `note` to the last entry's, after what is there.
    mutating func annotateLast(appending note: String) {
        guard let last = entries.last else { return }
        annotateLast(last.note.isEmpty ? note : "\(last.note); \(note)")
    }

    /// The last `n` entries, one per line.
    public func tail(_ n: Int = 20) -> String {
        entries.suffix(n).map(\.description).joined(separator: "\n")
    }

    public var description: String { tail(entries.count) }
}
