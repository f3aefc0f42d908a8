/// What each side says first, after the stream header: who it is and what
/// the machine is, so that the other side refuses a mismatch before any page
/// moves. The payload of a `hello` message (JSON).
public struct MigrationHello: Codable, Hashable, Sendable {
    /// The protocol version (as in the stream header).
    public var version: UInt32
    /// A digest of the CPU features KVM offers guests on this host
    /// (`KVM_GET_SUPPORTED_CPUID`): a guest moved to a host that lacks a
    /// feature it uses would fault, so the digests must match.
    public var cpuDigest: String
    /// The source's guest RAM ranges (the destination's own hello: the most
    /// RAM it accepts, as one range from 0).
    public var memoryRegions: [MemoryRegion]
    /// The source's vCPU count (0 in the destination's hello).
    public var vcpuCount: Int
    /// Whether guest RAM comes as a memfd (`SCM_RIGHTS`) instead of pages:
    /// the source offers it, the destination accepts it by saying it too.
    public var memoryHandover: Bool

    /// One range of guest RAM.
    public struct MemoryRegion: Codable, Hashable, Sendable {
        public var base: UInt64
        public var size: UInt64

        public init(base: UInt64, size: UInt64) {
            self.base = base
            self.size = size
        }
    }

    public init(
        version: UInt32 = MigrationWire.version, cpuDigest: String, memoryRegions: [MemoryRegion], vcpuCount: Int, memoryHandover: Bool
    ) {
        self.version = version
        self.cpuDigest = cpuDigest
        self.memoryRegions = memoryRegions
        self.vcpuCount = vcpuCount
        self.memoryHandover = memoryHandover
    }

    /// The bytes of guest RAM the ranges add up to (saturating).
    public var memorySize: UInt64 {
        memoryRegions.reduce(0) { total, region in
            let (sum, overflow) = total.addingReportingOverflow(region.size)
            return overflow ? .max : sum
        }
    }
}
