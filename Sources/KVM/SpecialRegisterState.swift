internal import CKVM
import VMCore

/// Everything `KVM_GET_SREGS` reports: the registers `SpecialRegisters` models
/// plus the pending-interrupt bitmap, which restore must put back too (it holds
/// an interrupt KVM accepted from a userspace PIC but has not yet delivered).
public struct SpecialRegisterState: Codable, Hashable, Sendable {
    /// Segments, descriptor tables, CR0-CR8, EFER and the APIC base.
    public var registers: SpecialRegisters
    /// 256 bits, one per vector, as four little-endian words (`interrupt_bitmap`).
    public var interruptBitmap: [UInt64]

    /// The number of words in `interruptBitmap`.
    public static let interruptBitmapWords = 4

    public init(registers: SpecialRegisters, interruptBitmap: [UInt64] = [0, 0, 0, 0]) {
        self.registers = registers
        self.interruptBitmap = interruptBitmap
    }

    init(_ sregs: kvm_sregs) {
        registers = SpecialRegisters(sregs)
        interruptBitmap = withUnsafeBytes(of: sregs.interrupt_bitmap) { Array($0.bindMemory(to: UInt64.self)) }
    }

    func kvm(for operation: KVMOperation) throws(KVMError) -> kvm_sregs {
        guard interruptBitmap.count == Self.interruptBitmapWords else {
            throw .stateSizeMismatch(
                field: "interrupt bitmap", expected: Self.interruptBitmapWords, actual: interruptBitmap.count, operation: operation)
        }
        var sregs = kvm_sregs()
        registers.store(into: &sregs)
        withUnsafeMutableBytes(of: &sregs.interrupt_bitmap) { raw in
            for (i, word) in interruptBitmap.enumerated() { raw.storeBytes(of: word, toByteOffset: i * 8, as: UInt64.self) }
        }
        return sregs
    }
}
