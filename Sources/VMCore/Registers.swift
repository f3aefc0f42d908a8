/// The general-purpose registers, RIP and RFLAGS (`struct kvm_regs`).
public struct Registers: Codable, Hashable, Sendable {
    public var rax: UInt64 = 0, rbx: UInt64 = 0, rcx: UInt64 = 0, rdx: UInt64 = 0
    public var rsi: UInt64 = 0, rdi: UInt64 = 0, rsp: UInt64 = 0, rbp: UInt64 = 0
    public var r8: UInt64 = 0, r9: UInt64 = 0, r10: UInt64 = 0, r11: UInt64 = 0
    public var r12: UInt64 = 0, r13: UInt64 = 0, r14: UInt64 = 0, r15: UInt64 = 0
    public var rip: UInt64 = 0
    /// Bit 1 is reserved and always set on x86.
    public var rflags: UInt64 = 0x2

    public init() {}

    /// RFLAGS.IF: whether the CPU accepts maskable interrupts.
    public var interruptsEnabled: Bool { rflags & (1 << 9) != 0 }
}

/// A segment register with its hidden descriptor cache (`struct kvm_segment`).
public struct Segment: Codable, Hashable, Sendable {
    public var base: UInt64 = 0
    public var limit: UInt32 = 0xffff
    public var selector: UInt16 = 0
    /// The descriptor type field (bits 8-11 of the descriptor's high word).
    public var type: UInt8 = 0
    public var present: Bool = true
    public var dpl: UInt8 = 0
    /// D/B: 32-bit default operand size.
    public var db: Bool = false
    /// S: code or data (as opposed to a system descriptor).
    public var s: Bool = true
    /// L: 64-bit code segment.
    public var l: Bool = false
    /// G: limit is in 4 KiB units.
    public var g: Bool = false
    public var avl: Bool = false
    public var unusable: Bool = false

    public init(
        base: UInt64 = 0, limit: UInt32 = 0xffff, selector: UInt16 = 0, type: UInt8 = 0,
        present: Bool = true, dpl: UInt8 = 0, db: Bool = false, s: Bool = true, l: Bool = false,
        g: Bool = false, avl: Bool = false, unusable: Bool = false
    ) {
        self.base = base
        self.limit = limit
        self.selector = selector
        self.type = type
        self.present = present
        self.dpl = dpl
        self.db = db
        self.s = s
        self.l = l
        self.g = g
        self.avl = avl
        self.unusable = unusable
    }
}

/// The GDTR or IDTR.
public struct DescriptorTable: Codable, Hashable, Sendable {
    public var base: UInt64
    public var limit: UInt16
    public init(base: UInt64 = 0, limit: UInt16 = 0xffff) {
        self.base = base
        self.limit = limit
    }
}

/// Segment, control and descriptor-table registers (`struct kvm_sregs`).
public struct SpecialRegisters: Codable, Hashable, Sendable {
    public var cs = Segment(type: 0xb), ds = Segment(type: 0x3), es = Segment(type: 0x3)
    public var fs = Segment(type: 0x3), gs = Segment(type: 0x3), ss = Segment(type: 0x3)
    public var tr = Segment(type: 0xb, s: false)
    public var ldt = Segment(type: 0x2, s: false)
    public var gdt = DescriptorTable()
    public var idt = DescriptorTable()
    public var cr0: UInt64 = 0x60000010
    public var cr2: UInt64 = 0
    public var cr3: UInt64 = 0
    public var cr4: UInt64 = 0
    public var cr8: UInt64 = 0
    public var efer: UInt64 = 0
    public var apicBase: UInt64 = 0xfee00900

    public init() {}
}

/// The x87/SSE state (`struct kvm_fpu`).
public struct FPUState: Codable, Hashable, Sendable {
    /// ST0-ST7 / MM0-MM7, 16 bytes each (80 bits used).
    public var fpr: [[UInt8]] = Array(repeating: Array(repeating: 0, count: 16), count: 8)
    /// The x87 control word; 0x37f is its value after FNINIT (all exceptions masked).
    public var fcw: UInt16 = 0x37f
    public var fsw: UInt16 = 0
    /// The abridged tag word (one bit per register, as in FXSAVE).
    public var ftwx: UInt8 = 0
    public var lastOpcode: UInt16 = 0
    public var lastIP: UInt64 = 0
    public var lastDP: UInt64 = 0
    /// XMM0-XMM15, 16 bytes each.
    public var xmm: [[UInt8]] = Array(repeating: Array(repeating: 0, count: 16), count: 16)
    /// 0x1f80 is MXCSR's value at reset: all SSE exceptions masked.
    public var mxcsr: UInt32 = 0x1f80

    public init() {}
}

/// Model-specific register numbers the VMM uses.
public enum MSR {
    public static let efer: UInt32 = 0xc000_0080
    public static let star: UInt32 = 0xc000_0081
    public static let lstar: UInt32 = 0xc000_0082
    public static let fsBase: UInt32 = 0xc000_0100
    public static let gsBase: UInt32 = 0xc000_0101
    public static let kernelGSBase: UInt32 = 0xc000_0102
    public static let sysenterCS: UInt32 = 0x174
    public static let tsc: UInt32 = 0x10
    public static let miscEnable: UInt32 = 0x1a0
}
