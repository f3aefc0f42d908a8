/// One of the CPU's four debug-register slots (DR0-DR3): an instruction
/// breakpoint or a data watchpoint, as DR7's enable, R/W and LEN bits describe it.
public struct HardwareBreakpoint: Codable, Hashable, Sendable {
    /// What makes the slot fire.
    public enum Trigger: String, Codable, Hashable, Sendable {
        /// Fetching the instruction at `address` (a fault: before it runs).
        case execute
        /// A write to the watched bytes (a trap: after the instruction).
        case write
        /// A read or write of the watched bytes (x86 cannot watch reads alone).
        case readWrite
    }

    /// The linear address.
    public var address: UInt64
    public var trigger: Trigger
    /// 1, 2, 4 or 8 bytes, aligned to the length; 1 for `.execute`.
    public var length: Int

    public init(address: UInt64, trigger: Trigger = .execute, length: Int = 1) {
        self.address = address
        self.trigger = trigger
        self.length = trigger == .execute ? 1 : length
    }

    /// Whether the CPU can watch this: a length of 1, 2, 4 or 8 with the address aligned to it.
    public var isValid: Bool { [1, 2, 4, 8].contains(length) && address % UInt64(length) == 0 }

    /// This slot's bits in DR7 when it sits in slot `index` (0-3): global
    /// enable, R/W (00 execute, 01 write, 11 read/write) and LEN (00 1 byte,
    /// 01 2, 11 4, 10 8).
    public func dr7Bits(slot index: Int) -> UInt64 {
        let rw: UInt64
        switch trigger {
        case .execute: rw = 0b00
        case .write: rw = 0b01
        case .readWrite: rw = 0b11
        }
        let len: UInt64
        switch length {
        case 2: len = 0b01
        case 4: len = 0b11
        case 8: len = 0b10
        default: len = 0b00
        }
        let i = UInt64(index)
        return 1 << (i * 2 + 1) | rw << (16 + i * 4) | len << (18 + i * 4)
    }
}
