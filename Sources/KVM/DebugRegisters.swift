internal import CKVM

/// The guest's own debug registers (`struct kvm_debugregs`), as opposed to the
/// breakpoints the VMM sets with `setGuestDebug`.
public struct DebugRegisters: Codable, Hashable, Sendable {
    /// DR0-DR3, the breakpoint addresses.
    public var addresses: [UInt64]
    public var dr6: UInt64
    public var dr7: UInt64
    public var flags: UInt64

    public init(addresses: [UInt64] = [0, 0, 0, 0], dr6: UInt64 = 0xffff_0ff0, dr7: UInt64 = 0x400, flags: UInt64 = 0) {
        self.addresses = addresses
        self.dr6 = dr6
        self.dr7 = dr7
        self.flags = flags
    }

    init(_ d: kvm_debugregs) {
        addresses = withUnsafeBytes(of: d.db) { Array($0.bindMemory(to: UInt64.self)) }
        dr6 = d.dr6
        dr7 = d.dr7
        flags = d.flags
    }

    func kvm() throws(KVMError) -> kvm_debugregs {
        guard addresses.count == 4 else {
            throw .stateSizeMismatch(field: "DR0-DR3", expected: 4, actual: addresses.count, operation: .setDebugRegisters)
        }
        var d = kvm_debugregs()
        withUnsafeMutableBytes(of: &d.db) { raw in
            for (i, address) in addresses.enumerated() { raw.storeBytes(of: address, toByteOffset: i * 8, as: UInt64.self) }
        }
        d.dr6 = dr6
        d.dr7 = dr7
        d.flags = flags
        return d
    }
}
