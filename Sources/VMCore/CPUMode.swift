/// The x86 operating mode a guest is entered in.
public enum CPUMode: String, CaseIterable, Hashable, Sendable, Codable {
    /// 16-bit real mode, as after reset (CS:IP = 0:load address).
    case real
    /// 32-bit protected mode with flat 4 GiB segments and paging off.
    case protected
    /// 64-bit long mode with identity-mapped page tables.
    case long
}
