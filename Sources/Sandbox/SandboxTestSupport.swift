internal import CSandbox

/// What the tests compare filter programs against.
enum SandboxTestSupport {
    /// Where log mode's one allowed `syscall` instruction ends.
    static var trampolineAddress: UInt64 { csandbox_trampoline_address() }
}
