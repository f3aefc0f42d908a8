/// What a reset put back.
public struct ResetStatistics: Hashable, Sendable {
    /// Pages the guest (through KVM) or the VMM (through `GuestMemory`) wrote since the last reset.
    public var pagesRestored: Int
}
