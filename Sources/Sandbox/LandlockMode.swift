/// Whether the VMM's threads are confined to the paths they need after
/// start-up with Landlock (`--landlock`).
public enum LandlockMode: String, CaseIterable, Sendable {
    /// Every thread is confined as it starts (best-effort: a kernel without
    /// Landlock is reported once and the VMM runs on unconfined).
    case enforce
    /// No Landlock at all.
    case off
}
