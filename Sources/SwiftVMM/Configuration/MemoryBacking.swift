/// What guest RAM is made of (`--memory-backing`).
public enum MemoryBacking: String, Codable, Hashable, Sendable, CaseIterable {
    /// Private anonymous memory (`MAP_PRIVATE | MAP_ANONYMOUS`): the default.
    case anonymous
    /// A memfd mapped shared (`MAP_SHARED`): the same to the guest, and a
    /// migration to a swiftvmm on this host (a Unix socket) hands the memfd
    /// over (`SCM_RIGHTS`) instead of copying any page: a local live upgrade.
    case memfd
}
