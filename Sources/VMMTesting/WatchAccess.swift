/// What a data watchpoint (`TestVM.watch(address:length:on:)`) fires on.
public enum WatchAccess: Hashable, Sendable {
    /// A write to the watched bytes.
    case write
    /// A read or a write (x86 debug registers cannot watch reads alone).
    case readWrite
}
