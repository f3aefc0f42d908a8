import SwiftVMM
import VMCore

/// A condition on VM exits that a test runs the guest until.
///
/// ```swift
/// try vm.run(until: .io(port: 0x64))
/// try vm.run(until: .mmio(0xfee0_0000..<0xfee0_1000))
/// try vm.run(until: .halt)
/// ```
public struct ExitPredicate: Sendable, CustomStringConvertible {
    public let description: String
    private let test: @Sendable (VMExit) -> Bool

    public init(_ description: String, matching test: @escaping @Sendable (VMExit) -> Bool) {
        self.description = description
        self.test = test
    }

    public func matches(_ exit: VMExit) -> Bool { test(exit) }

    /// Any exit at all.
    public static let any = ExitPredicate("any exit") { _ in true }

    /// An `IN` or `OUT` (single or string) on `port`.
    public static func io(port: UInt16) -> ExitPredicate {
        ExitPredicate("I/O on port \(hex(port))") { exit in
            switch exit {
            case .ioIn(port, _, _), .ioOut(port, _, _, _): return true
            default: return false
            }
        }
    }

    /// An `OUT` to `port`.
    public static func ioOut(port: UInt16) -> ExitPredicate {
        ExitPredicate("OUT to port \(hex(port))") { if case .ioOut(port, _, _, _) = $0 { true } else { false } }
    }

    /// An `IN` from `port`.
    public static func ioIn(port: UInt16) -> ExitPredicate {
        ExitPredicate("IN from port \(hex(port))") { if case .ioIn(port, _, _) = $0 { true } else { false } }
    }

    /// An MMIO read or write at an address in `range`.
    public static func mmio(_ range: Range<UInt64>) -> ExitPredicate {
        ExitPredicate("MMIO in [\(hex(range.lowerBound)), \(hex(range.upperBound)))") { exit in
            switch exit {
            case .mmioRead(let address, _), .mmioWrite(let address, _): return range.contains(address.rawValue)
            default: return false
            }
        }
    }

    /// `HLT`.
    public static let halt = ExitPredicate("HLT") { $0 == .halt }

    /// A shutdown (triple fault), or the internal error some hosts report for one.
    public static let shutdown = ExitPredicate("shutdown") { exit in
        switch exit {
        case .shutdown, .internalError: return true
        default: return false
        }
    }

    /// A write to the debug-exit port (0xf4, QEMU's `isa-debug-exit`), by
    /// which a guest ends the machine; optionally with a given status. Not to
    /// be confused with `debugTrap(at:)`, the CPU's #DB/#BP.
    public static func debugExit(status: UInt32? = nil) -> ExitPredicate {
        let port = "a write to the debug-exit port \(hex(PortMap.debugExit.base))"
        return ExitPredicate("\(port)\(status.map { " with status \(hex($0))" } ?? "")") { exit in
            guard case .ioOut(PortMap.debugExit.base, let size, 1, let data) = exit else { return false }
            return status.map { UInt64($0) == data.value & (size == 4 ? 0xffff_ffff : (1 << (UInt64(size) * 8)) - 1) } ?? true
        }
    }

    /// A debug trap: KVM's `.debug` exit for a breakpoint (#DB from a
    /// hardware breakpoint, #BP from `int3`) or a single step, optionally at
    /// a given guest address. Not to be confused with `debugExit(status:)`,
    /// the debug-exit *port*.
    public static func debugTrap(at address: UInt64? = nil) -> ExitPredicate {
        ExitPredicate("a debug trap (breakpoint or single step)\(address.map { " at \(hex($0))" } ?? "")") { exit in
            guard case .debug(let info) = exit else { return false }
            return address.map { $0 == info.pc } ?? true
        }
    }

    /// The old name of `debugTrap(at:)`.
    @available(*, deprecated, renamed: "debugTrap(at:)")
    public static func debug(at address: UInt64? = nil) -> ExitPredicate { debugTrap(at: address) }

    /// A hypercall (an `OUT` to `Hypercall.port`).
    public static let hypercall = ExitPredicate("hypercall") { exit in
        if case .ioOut(Hypercall.port, _, _, _) = exit { true } else { false }
    }

    /// Either predicate.
    public static func || (lhs: ExitPredicate, rhs: ExitPredicate) -> ExitPredicate {
        ExitPredicate("\(lhs) or \(rhs)") { lhs.matches($0) || rhs.matches($0) }
    }
}
