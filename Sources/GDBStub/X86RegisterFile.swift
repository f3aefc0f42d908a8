/// One vCPU's registers in the order and sizes of the target description
/// (`X86TargetDescription`), which is also the layout of `g` and `G`.
///
/// Values are little-endian bytes per register, so that x87's 80-bit and
/// SSE's 128-bit registers need no special type. `floatingPointAvailable`
/// false makes `g` send the x87/SSE registers as unavailable (`xx`).
public struct X86RegisterFile: Hashable, Sendable {
    /// A register of the description: its name, size in bytes, GDB type and feature.
    public struct Register: Hashable, Sendable {
        public let name: String
        public let size: Int
        let type: String
        let feature: Feature
        /// Whether it is x87/SSE state (available only where the host allows).
        var isFloatingPoint: Bool { feature == .sse || (feature == .core && (size == 10 || Self.x87Control.contains(name))) }
        static let x87Control: Set<String> = ["fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"]
    }

    enum Feature: String, Hashable, Sendable {
        case core = "org.gnu.gdb.i386.core"
        case sse = "org.gnu.gdb.i386.sse"
        case segments = "org.gnu.gdb.i386.segments"
        case system = "org.swiftvmm.x86.system"
    }

    /// Every register, numbered by index.
    public static let layout: [Register] = {
        var r: [Register] = []
        for name in ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp"] + (8...15).map({ "r\($0)" }) {
            r.append(Register(name: name, size: 8, type: name == "rbp" || name == "rsp" ? "data_ptr" : "int64", feature: .core))
        }
        r.append(Register(name: "rip", size: 8, type: "code_ptr", feature: .core))
        r.append(Register(name: "eflags", size: 4, type: "int32", feature: .core))
        for name in ["cs", "ss", "ds", "es", "fs", "gs"] { r.append(Register(name: name, size: 4, type: "int32", feature: .core)) }
        for i in 0..<8 { r.append(Register(name: "st\(i)", size: 10, type: "i387_ext", feature: .core)) }
        for name in ["fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"] {
            r.append(Register(name: name, size: 4, type: "int", feature: .core))
        }
        for i in 0..<16 { r.append(Register(name: "xmm\(i)", size: 16, type: "vec128", feature: .sse)) }
        r.append(Register(name: "mxcsr", size: 4, type: "int", feature: .sse))
        r.append(Register(name: "fs_base", size: 8, type: "int64", feature: .segments))
        r.append(Register(name: "gs_base", size: 8, type: "int64", feature: .segments))
        for name in ["cr0", "cr2", "cr3", "cr4", "efer"] { r.append(Register(name: name, size: 8, type: "int64", feature: .system)) }
        return r
    }()

    /// The numbers of ST0 and XMM0, where the x87 and SSE registers start.
    public static let st0 = layout.firstIndex { $0.name == "st0" } ?? 24
    public static let xmm0 = layout.firstIndex { $0.name == "xmm0" } ?? 40

    /// The register numbered `name` in the layout.
    public static func number(of name: String) -> Int? { layout.firstIndex { $0.name == name } }

    /// The byte offset of each register in `bytes`.
    static let offsets: [Int] = {
        var offsets: [Int] = []
        var offset = 0
        for register in layout {
            offsets.append(offset)
            offset += register.size
        }
        return offsets
    }()

    /// The size of `g`'s payload, in bytes.
    public static let totalSize = layout.reduce(0) { $0 + $1.size }

    /// Every register's bytes, concatenated in layout order.
    public var bytes: [UInt8]
    public var floatingPointAvailable: Bool

    public init() {
        bytes = Array(repeating: 0, count: Self.totalSize)
        floatingPointAvailable = true
    }

    /// The bytes of register `number`.
    public subscript(number: Int) -> [UInt8] {
        get { Array(bytes[Self.offsets[number]..<Self.offsets[number] + Self.layout[number].size]) }
        set {
            let size = Self.layout[number].size
            let value = newValue.count >= size ? Array(newValue.prefix(size)) : newValue + Array(repeating: 0, count: size - newValue.count)
            bytes.replaceSubrange(Self.offsets[number]..<Self.offsets[number] + size, with: value)
        }
    }

    /// Register `name` as an integer (its low 8 bytes).
    public subscript(name: String) -> UInt64 {
        get {
            guard let n = Self.number(of: name) else { preconditionFailure("no register \(name)") }
            return self[n].prefix(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }
        set {
            guard let n = Self.number(of: name) else { preconditionFailure("no register \(name)") }
            self[n] = (0..<Self.layout[n].size).map { $0 < 8 ? UInt8(truncatingIfNeeded: newValue >> (UInt64($0) * 8)) : 0 }
        }
    }

    /// `g`'s payload: hex per register, `xx` for unavailable ones.
    func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.totalSize * 2)
        for (n, register) in Self.layout.enumerated() {
            if register.isFloatingPoint, !floatingPointAvailable {
                out.append(contentsOf: repeatElement(UInt8(ascii: "x"), count: register.size * 2))
            } else {
                out.append(contentsOf: GDBHex.encode(self[n]))
            }
        }
        return out
    }
}
