/// The VM's kvmclock (`struct kvm_clock_data`): the nanosecond count every
/// vCPU's kvmclock page derives guest time from.
public struct ClockState: Codable, Hashable, Sendable {
    /// Guest nanoseconds.
    public var clock: UInt64
    /// `KVM_CLOCK_TSC_STABLE`, `KVM_CLOCK_REALTIME` and `KVM_CLOCK_HOST_TSC`:
    /// which of the fields below KVM filled in.
    public var flags: UInt32
    /// Host wall-clock nanoseconds when `clock` was read (with `KVM_CLOCK_REALTIME`).
    public var realtime: UInt64
    /// The host TSC when `clock` was read (with `KVM_CLOCK_HOST_TSC`).
    public var hostTSC: UInt64

    public init(clock: UInt64, flags: UInt32 = 0, realtime: UInt64 = 0, hostTSC: UInt64 = 0) {
        self.clock = clock
        self.flags = flags
        self.realtime = realtime
        self.hostTSC = hostTSC
    }
}
