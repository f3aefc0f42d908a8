/// A thread as the debugger names it: one thread per vCPU, numbered from 1
/// (vCPU 0 is thread 1, since the protocol keeps 0 for "any").
public enum GDBThreadID: Hashable, Sendable {
    /// `-1`: every thread.
    case all
    /// `0`: any thread, the stub's choice.
    case any
    /// A thread number, 1 and up.
    case thread(Int)

    /// Parses `-1`, `0` or a hex number (a `p<pid>.` prefix is allowed and ignored).
    init?(_ text: ArraySlice<UInt8>) {
        var text = text
        if text.first == UInt8(ascii: "p"), let dot = text.firstIndex(of: UInt8(ascii: ".")) { text = text[(dot + 1)...] }
        if text.elementsEqual("-1".utf8) {
            self = .all
            return
        }
        guard text.count <= 8, let value = GDBHex.parseNumber(text) else { return nil }
        self = value == 0 ? .any : .thread(Int(value))
    }
}
