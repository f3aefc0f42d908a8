/// What a `KVM_EXIT_SYSTEM_EVENT` reports (`KVM_SYSTEM_EVENT_*`), decoded by
/// the KVM layer so that no one else needs KVM's numbers.
public enum SystemEvent: Hashable, Sendable {
    /// The guest asked to power off (e.g. a PSCI or TDX shutdown).
    case shutdown
    /// The guest asked to be reset.
    case reset
    /// The guest reported a crash.
    case crash
    /// A vCPU woke from a suspend the VMM asked for.
    case wakeup
    /// The guest asked to suspend.
    case suspend
    /// An SEV guest asked to be terminated.
    case sevTerminate
    /// An event this VMM does not know, with KVM's number for it.
    case other(UInt32)
}
