/// Masks for accesses of a given size, shared by the buses and devices.
enum AccessWidth {
    /// The bits an access of `size` bytes carries: all ones for 8 or more,
    /// nothing for 0 or less, so that no guest-chosen size can trap a shift.
    static func mask(size: Int) -> UInt64 {
        if size >= 8 { return .max }
        if size <= 0 { return 0 }
        return (1 << (UInt64(size) * 8)) - 1
    }
}
