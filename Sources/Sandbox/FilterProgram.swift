internal import CSandbox

/// A seccomp-bpf program compiled from a list of rules: classic BPF over
/// `struct seccomp_data` (nr at 0, arch at 4, instruction pointer at 8, the
/// six arguments from 16, 8 bytes each, little-endian).
///
/// The layout keeps every jump short: each system call is one `JEQ` that
/// skips its own block when the number differs, and every block ends in a
/// `RET`, so nothing jumps further than its own block.
public struct FilterProgram: Sendable {
    /// The instructions, as `struct sock_filter`.
    let instructions: [csandbox_instruction]

    /// How many instructions the program has.
    public var count: Int { instructions.count }

    // BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h).
    private static let loadWord: UInt16 = 0x20  // BPF_LD | BPF_W | BPF_ABS
    private static let jumpEqual: UInt16 = 0x15  // BPF_JMP | BPF_JEQ | BPF_K
    private static let jumpGreaterOrEqual: UInt16 = 0x35  // BPF_JMP | BPF_JGE | BPF_K
    private static let jumpSet: UInt16 = 0x45  // BPF_JMP | BPF_JSET | BPF_K
    private static let returnConstant: UInt16 = 0x06  // BPF_RET | BPF_K
    static let allow: UInt32 = 0x7fff_0000
    static let trap: UInt32 = 0x0003_0000
    static let killProcess: UInt32 = 0x8000_0000
    static let errnoBase: UInt32 = 0x0005_0000
    /// System call numbers with this bit are the x32 ABI's: never allowed.
    static let x32Bit: UInt32 = 0x4000_0000

    /// Compiles `rules` (one per system call) for `kind`. In `log` mode, a call
    /// made from `csandbox_trampoline` (the SIGSYS handler making the call it
    /// logged) is allowed; in `enforce` mode nothing is.
    public init(kind: ThreadKind, rules: [SyscallRule], mode: SeccompMode) throws(SandboxError) {
        var code = [csandbox_instruction]()
        func emit(_ op: UInt16, _ k: UInt32, _ jt: Int = 0, _ jf: Int = 0) {
            code.append(csandbox_instruction(code: op, jt: UInt8(truncatingIfNeeded: jt), jf: UInt8(truncatingIfNeeded: jf), k: k))
        }
        // Another architecture's numbering (int 0x80 from a 64-bit process) is refused outright.
        emit(Self.loadWord, 4)
        emit(Self.jumpEqual, csandbox_audit_arch(), 1, 0)
        emit(Self.returnConstant, Self.killProcess)
        if mode == .log {
            let address = csandbox_trampoline_address()
            emit(Self.loadWord, 8)
            emit(Self.jumpEqual, UInt32(truncatingIfNeeded: address), 0, 3)
            emit(Self.loadWord, 12)
            emit(Self.jumpEqual, UInt32(truncatingIfNeeded: address >> 32), 0, 1)
            emit(Self.returnConstant, Self.allow)
        }
        emit(Self.loadWord, 0)
        emit(Self.jumpGreaterOrEqual, Self.x32Bit, 0, 1)
        emit(Self.returnConstant, Self.trap)
        var seen = Set<String>()
        for rule in rules where seen.insert(rule.name).inserted {
            guard let number = SystemCalls.number(of: rule.name) else { throw .unknownSystemCall(rule.name) }
            let block = Self.block(for: rule)
            guard block.count <= 255 else { throw .programTooLong(kind, instructions: block.count) }
            emit(Self.jumpEqual, UInt32(number), 0, block.count)
            code.append(contentsOf: block)
        }
        emit(Self.returnConstant, Self.trap)
        guard code.count <= 4096 else { throw .programTooLong(kind, instructions: code.count) }
        instructions = code
    }

    /// The instructions after a rule's `JEQ`: they end in `RET` on every path.
    private static func block(for rule: SyscallRule) -> [csandbox_instruction] {
        func instruction(_ op: UInt16, _ k: UInt32, _ jt: Int = 0, _ jf: Int = 0) -> csandbox_instruction {
            csandbox_instruction(code: op, jt: UInt8(truncatingIfNeeded: jt), jf: UInt8(truncatingIfNeeded: jf), k: k)
        }
        if let errno = rule.errno { return [instruction(returnConstant, errnoBase | UInt32(errno))] }
        guard let condition = rule.condition else { return [instruction(returnConstant, allow)] }
        switch condition {
        case .oneOf(let index, let values):
            // LD arg; JEQ v0..vn-1 -> allow; RET trap; RET allow.
            var block = [instruction(loadWord, UInt32(16 + 8 * index))]
            for (position, value) in values.enumerated() { block.append(instruction(jumpEqual, value, values.count - position, 0)) }
            block.append(instruction(returnConstant, trap))
            block.append(instruction(returnConstant, allow))
            return block
        case .noBits(let index, let mask):
            return [
                instruction(loadWord, UInt32(16 + 8 * index)), instruction(jumpSet, mask, 0, 1), instruction(returnConstant, trap),
                instruction(returnConstant, allow),
            ]
        case .allBits(let index, let mask):
            // JSET is "any bit": a mask of one bit (CLONE_THREAD) is what this is used with.
            return [
                instruction(loadWord, UInt32(16 + 8 * index)), instruction(jumpSet, mask, 1, 0), instruction(returnConstant, trap),
                instruction(returnConstant, allow),
            ]
        }
    }

    /// Installs the program on the calling thread (and the threads it starts later).
    func install() throws(SandboxError) {
        let result = instructions.withUnsafeBufferPointer { csandbox_install($0.baseAddress, UInt16($0.count)) }
        guard result == 0 else { throw .systemCall("seccomp(SECCOMP_SET_MODE_FILTER)", errno: -result) }
    }
}
