import VMCore

/// Why a device refused to restore a saved `State`.
///
/// Saved state comes from a snapshot file or a migration stream, so it is
/// untrusted input: every field is checked before any of it is applied, and
/// a bad one is reported here, naming the device, the field (as the `State`
/// property is spelled) and what was expected, rather than trapping later
/// when the guest touches the register. A refused restore leaves the device
/// as it was.
public struct DeviceStateError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What is wrong with the field.
    public enum Problem: Hashable, Sendable {
        /// A collection holds `count` elements where at most `maximum` fit.
        case tooLong(count: Int, maximum: Int)
        /// A collection holds `count` elements where exactly `expected` are needed.
        case wrongLength(count: Int, expected: Int)
        /// A number lies outside `valid`.
        case outOfRange(value: Int, valid: ClosedRange<Int>)
        /// A register value has bits set that the hardware keeps at 0.
        case reservedBitsSet(value: UInt64, reserved: UInt64)
        /// A register value has bits clear that the hardware keeps at 1.
        case requiredBitsClear(value: UInt64, required: UInt64)
        /// A code that stands for one of a fixed set of values is none of
        /// them; `expected` lists the valid ones.
        case unknownValue(value: UInt64, expected: String)
        /// The field contradicts another one; `detail` says how.
        case inconsistent(detail: String)
    }

    /// The device's type name, such as `Serial16550`.
    public var device: String
    /// The `State` property that failed, such as `receiveFIFO`.
    public var field: String
    /// What is wrong with it.
    public var problem: Problem

    /// An error for `field` of `device`.
    public init(device: String, field: String, problem: Problem) {
        self.device = device
        self.field = field
        self.problem = problem
    }

    public var description: String {
        let detail: String
        switch problem {
        case .tooLong(let count, let maximum):
            detail = "holds \(count) elements, at most \(maximum) allowed"
        case .wrongLength(let count, let expected):
            detail = "holds \(count) elements, expected \(expected)"
        case .outOfRange(let value, let valid):
            detail = "is \(value), expected \(valid.lowerBound)...\(valid.upperBound)"
        case .reservedBitsSet(let value, let reserved):
            detail = "is \(hex(value)), which sets reserved bits \(hex(value & reserved))"
        case .requiredBitsClear(let value, let required):
            detail = "is \(hex(value)), which clears bits \(hex(~value & required)) that always read 1"
        case .unknownValue(let value, let expected):
            detail = "is \(hex(value)), expected \(expected)"
        case .inconsistent(let why):
            detail = why
        }
        return "cannot restore \(device) state: \(field) \(detail)"
    }
}
