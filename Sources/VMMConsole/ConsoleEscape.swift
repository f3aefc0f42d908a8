/// The console's escape commands, recognised in the bytes typed at the host
/// terminal, as QEMU's `-nographic` console does: Ctrl-A (0x01) is a prefix,
/// and the byte after it is a command for the VMM, not input for the guest.
///
/// | typed         | effect                                   |
/// |---------------|------------------------------------------|
/// | Ctrl-A x      | `.quit`                                  |
/// | Ctrl-A h (?)  | `.help`                                  |
/// | Ctrl-A p      | `.pause` (pause, or resume if paused)    |
/// | Ctrl-A s      | `.snapshot` (save one, then go on)       |
/// | Ctrl-A Ctrl-A | one 0x01 goes to the guest               |
/// | Ctrl-A other  | both bytes go to the guest unchanged     |
///
/// QEMU drops an unknown command; we forward it instead, because the guest
/// may want it (Ctrl-A b is "beginning of line" in a shell, Ctrl-A c is
/// screen's and tmux's prefix), and we reserve only the commands we have.
/// QEMU's Ctrl-A s (flush the disks) becomes "save a snapshot" here, and
/// Ctrl-A p is ours (QEMU's monitor has `stop`/`cont` for it).
///
/// A pure state machine: feed it the chunks `read` returns, in order. The
/// only state carried between chunks is whether the last chunk ended in a
/// prefix, so a command split across two reads is still recognised.
public struct ConsoleEscape: Sendable, Equatable {
    /// The escape prefix, Ctrl-A, as in QEMU (`term_escape_char` 0x01).
    public static let prefix: UInt8 = 0x01

    /// A command typed after the prefix.
    public enum Action: Sendable, Equatable {
        /// Ctrl-A x: the user wants the VMM to stop.
        case quit
        /// Ctrl-A h: the caller should print `ConsoleEscape.helpText`.
        case help
        /// Ctrl-A p: pause the guest, or resume it if it is paused.
        case pause
        /// Ctrl-A s: save a snapshot of the machine, then let it go on.
        case snapshot
    }

    /// What one chunk of input amounts to.
    public struct Output: Sendable, Equatable {
        /// The bytes for the guest, in the order typed.
        public var bytes: [UInt8]
        /// The commands typed, in order.
        public var actions: [Action]

        public init(bytes: [UInt8] = [], actions: [Action] = []) {
            self.bytes = bytes
            self.actions = actions
        }
    }

    /// What the caller prints for `.help`. Lines end in CR LF because the
    /// terminal is in raw mode, where a bare LF may not return the carriage.
    public static let helpText = """
        \r
        C-a h    print this help\r
        C-a x    exit swiftvmm\r
        C-a p    pause the guest, or resume it\r
        C-a s    save a snapshot, then continue\r
        C-a C-a  send C-a to the guest\r
        C-a any other key is sent to the guest with the C-a\r

        """

    /// Whether the last byte seen was a prefix still waiting for its command.
    public private(set) var awaitingCommand = false

    public init() {}

    /// Splits `chunk` into bytes for the guest and commands for the VMM.
    public mutating func process(_ chunk: some Sequence<UInt8>) -> Output {
        var output = Output()
        output.bytes.reserveCapacity(chunk.underestimatedCount + 1)
        for byte in chunk {
            guard awaitingCommand else {
                if byte == Self.prefix { awaitingCommand = true } else { output.bytes.append(byte) }
                continue
            }
            awaitingCommand = false
            switch byte {
            case Self.prefix: output.bytes.append(Self.prefix)
            case UInt8(ascii: "x"): output.actions.append(.quit)
            // QEMU takes '?' as well as 'h'.
            case UInt8(ascii: "h"), UInt8(ascii: "?"): output.actions.append(.help)
            case UInt8(ascii: "p"): output.actions.append(.pause)
            case UInt8(ascii: "s"): output.actions.append(.snapshot)
            default: output.bytes.append(contentsOf: [Self.prefix, byte])
            }
        }
        return output
    }

    /// Ends the input: a prefix left waiting (the input ended right after a
    /// Ctrl-A) was meant for the guest after all, and is returned for it.
    public mutating func finish() -> [UInt8] {
        defer { awaitingCommand = false }
        return awaitingCommand ? [Self.prefix] : []
    }
}
