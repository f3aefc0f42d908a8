import VMCore

/// An 8-byte GDT code or data descriptor, and the segment-register state a CPU
/// caches when it loads one.
public struct SegmentDescriptor: Hashable, Sendable {
    public var base: UInt32
    /// 20-bit limit, in 4 KiB units when `granularity4K`.
    public var limit: UInt32
    /// The type field: 0xb = code, execute/read, accessed; 0x3 = data, read/write, accessed.
    public var type: UInt8
    public var dpl: UInt8
    public var longMode: Bool
    public var defaultSize32: Bool
    public var granularity4K: Bool

    /// Flat 4 GiB 32-bit ring-0 code.
    public static let flatCode32 = SegmentDescriptor(
        base: 0, limit: 0xfffff, type: 0xb, dpl: 0, longMode: false, defaultSize32: true, granularity4K: true)
    /// Flat 4 GiB ring-0 data.
    public static let flatData = SegmentDescriptor(
        base: 0, limit: 0xfffff, type: 0x3, dpl: 0, longMode: false, defaultSize32: true, granularity4K: true)
    /// 64-bit ring-0 code (base and limit are ignored in long mode; D must be 0 when L is 1).
    public static let code64 = SegmentDescriptor(
        base: 0, limit: 0xfffff, type: 0xb, dpl: 0, longMode: true, defaultSize32: false, granularity4K: true)

    /// The descriptor as the CPU reads it from the GDT.
    public var encoded: UInt64 {
        var value = UInt64(limit & 0xffff)
        value |= UInt64(base & 0xff_ffff) << 16
        value |= UInt64(type & 0xf) << 40
        value |= 1 << 44  // S: code/data, not a system descriptor
        value |= UInt64(dpl & 3) << 45
        value |= 1 << 47  // P: present
        value |= UInt64((limit >> 16) & 0xf) << 48
        if longMode { value |= 1 << 53 }
        if defaultSize32 { value |= 1 << 54 }
        if granularity4K { value |= 1 << 55 }
        value |= UInt64(base >> 24) << 56
        return value
    }

    /// The hidden segment-register state after loading this descriptor with `selector`.
    public func segment(selector: UInt16) -> Segment {
        Segment(
            base: UInt64(base), limit: granularity4K ? (limit << 12) | 0xfff : limit, selector: selector,
            type: type, present: true, dpl: dpl, db: defaultSize32, s: true, l: longMode, g: granularity4K)
    }
}
