internal import CKVM

/// The in-kernel i8254 PIT (`struct kvm_pit_state2`).
public struct PITState: Codable, Hashable, Sendable {
    /// One counter (`struct kvm_pit_channel_state`).
    public struct Channel: Codable, Hashable, Sendable {
        /// The reload value; 65536 when the guest wrote 0.
        public var count: UInt32 = 0
        public var latchedCount: UInt16 = 0
        public var countLatched: UInt8 = 0
        public var statusLatched: UInt8 = 0
        public var status: UInt8 = 0
        public var readState: UInt8 = 0
        public var writeState: UInt8 = 0
        public var writeLatch: UInt8 = 0
        public var rwMode: UInt8 = 0
        public var mode: UInt8 = 0
        public var bcd: UInt8 = 0
        public var gate: UInt8 = 0
        /// When the count was loaded, in host nanoseconds. KVM ignores it on
        /// restore and restarts the counter from `count`, so it never matches
        /// after a round trip.
        public var countLoadTime: Int64 = 0

        public init() {}
    }

    /// The number of channels the PIT has.
    public static let channelCount = 3

    /// Exactly three channels: 0 (the timer interrupt), 1 (DRAM refresh), 2 (speaker).
    public var channels: [Channel] = Array(repeating: Channel(), count: channelCount)
    /// `KVM_PIT_FLAGS_HPET_LEGACY` and `KVM_PIT_FLAGS_SPEAKER_DATA_ON`.
    public var flags: UInt32 = 0

    public init() {}

    init(_ s: kvm_pit_state2) {
        channels = withUnsafeBytes(of: s.channels) { raw in
            raw.bindMemory(to: kvm_pit_channel_state.self).map { c in
                var channel = Channel()
                channel.count = c.count
                channel.latchedCount = c.latched_count
                channel.countLatched = c.count_latched
                channel.statusLatched = c.status_latched
                channel.status = c.status
                channel.readState = c.read_state
                channel.writeState = c.write_state
                channel.writeLatch = c.write_latch
                channel.rwMode = c.rw_mode
                channel.mode = c.mode
                channel.bcd = c.bcd
                channel.gate = c.gate
                channel.countLoadTime = c.count_load_time
                return channel
            }
        }
        flags = s.flags
    }

    func kvm() throws(KVMError) -> kvm_pit_state2 {
        guard channels.count == Self.channelCount else {
            throw .stateSizeMismatch(field: "PIT channels", expected: Self.channelCount, actual: channels.count, operation: .setPIT)
        }
        var s = kvm_pit_state2()
        withUnsafeMutableBytes(of: &s.channels) { raw in
            let out = raw.bindMemory(to: kvm_pit_channel_state.self)
            for (i, c) in channels.enumerated() {
                out[i] = kvm_pit_channel_state(
                    count: c.count, latched_count: c.latchedCount, count_latched: c.countLatched, status_latched: c.statusLatched,
                    status: c.status, read_state: c.readState, write_state: c.writeState, write_latch: c.writeLatch,
                    rw_mode: c.rwMode, mode: c.mode, bcd: c.bcd, gate: c.gate, count_load_time: c.countLoadTime)
            }
        }
        s.flags = flags
        return s
    }
}
