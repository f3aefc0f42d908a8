import KVM

/// A CPU feature a user can hide from the guest with `--cpuid-mask`.
public struct CPUIDFeature: Hashable, Sendable {
    public enum Register: Sendable { case eax, ebx, ecx, edx }
    public var name: String
    public var function: UInt32
    public var index: UInt32
    public var register: Register
    public var bit: Int

    /// The features `--cpuid-mask` knows by name (Linux's /proc/cpuinfo names).
    /// Chosen for what a guest kernel may trip over on an emulating host:
    /// `cx16` (cmpxchg16b) and `xsave` (xrstor) are the instructions KVM's PVM
    /// back end does not emulate.
    public static let known: [CPUIDFeature] = [
        CPUIDFeature(name: "sse3", function: 1, index: 0, register: .ecx, bit: 0),
        CPUIDFeature(name: "pclmulqdq", function: 1, index: 0, register: .ecx, bit: 1),
        CPUIDFeature(name: "monitor", function: 1, index: 0, register: .ecx, bit: 3),
        CPUIDFeature(name: "vmx", function: 1, index: 0, register: .ecx, bit: 5),
        CPUIDFeature(name: "ssse3", function: 1, index: 0, register: .ecx, bit: 9),
        CPUIDFeature(name: "fma", function: 1, index: 0, register: .ecx, bit: 12),
        CPUIDFeature(name: "cx16", function: 1, index: 0, register: .ecx, bit: 13),
        CPUIDFeature(name: "pcid", function: 1, index: 0, register: .ecx, bit: 17),
        CPUIDFeature(name: "sse4_1", function: 1, index: 0, register: .ecx, bit: 19),
        CPUIDFeature(name: "sse4_2", function: 1, index: 0, register: .ecx, bit: 20),
        CPUIDFeature(name: "x2apic", function: 1, index: 0, register: .ecx, bit: 21),
        CPUIDFeature(name: "movbe", function: 1, index: 0, register: .ecx, bit: 22),
        CPUIDFeature(name: "popcnt", function: 1, index: 0, register: .ecx, bit: 23),
        CPUIDFeature(name: "tsc_deadline_timer", function: 1, index: 0, register: .ecx, bit: 24),
        CPUIDFeature(name: "aes", function: 1, index: 0, register: .ecx, bit: 25),
        CPUIDFeature(name: "xsave", function: 1, index: 0, register: .ecx, bit: 26),
        CPUIDFeature(name: "avx", function: 1, index: 0, register: .ecx, bit: 28),
        CPUIDFeature(name: "f16c", function: 1, index: 0, register: .ecx, bit: 29),
        CPUIDFeature(name: "rdrand", function: 1, index: 0, register: .ecx, bit: 30),
        CPUIDFeature(name: "hypervisor", function: 1, index: 0, register: .ecx, bit: 31),
        CPUIDFeature(name: "mce", function: 1, index: 0, register: .edx, bit: 7),
        CPUIDFeature(name: "mtrr", function: 1, index: 0, register: .edx, bit: 12),
        CPUIDFeature(name: "fsgsbase", function: 7, index: 0, register: .ebx, bit: 0),
        CPUIDFeature(name: "bmi1", function: 7, index: 0, register: .ebx, bit: 3),
        CPUIDFeature(name: "avx2", function: 7, index: 0, register: .ebx, bit: 5),
        CPUIDFeature(name: "smep", function: 7, index: 0, register: .ebx, bit: 7),
        CPUIDFeature(name: "bmi2", function: 7, index: 0, register: .ebx, bit: 8),
        CPUIDFeature(name: "erms", function: 7, index: 0, register: .ebx, bit: 9),
        CPUIDFeature(name: "invpcid", function: 7, index: 0, register: .ebx, bit: 10),
        CPUIDFeature(name: "avx512f", function: 7, index: 0, register: .ebx, bit: 16),
        CPUIDFeature(name: "rdseed", function: 7, index: 0, register: .ebx, bit: 18),
        CPUIDFeature(name: "smap", function: 7, index: 0, register: .ebx, bit: 20),
        CPUIDFeature(name: "umip", function: 7, index: 0, register: .ecx, bit: 2),
        CPUIDFeature(name: "pku", function: 7, index: 0, register: .ecx, bit: 3),
        CPUIDFeature(name: "la57", function: 7, index: 0, register: .ecx, bit: 16),
        CPUIDFeature(name: "rdpid", function: 7, index: 0, register: .ecx, bit: 22),
        CPUIDFeature(name: "xsaveopt", function: 0xd, index: 1, register: .eax, bit: 0),
        CPUIDFeature(name: "xsavec", function: 0xd, index: 1, register: .eax, bit: 1),
        CPUIDFeature(name: "xsaves", function: 0xd, index: 1, register: .eax, bit: 3),
        CPUIDFeature(name: "kvmclock", function: 0x4000_0001, index: 0, register: .eax, bit: 3),
        CPUIDFeature(name: "kvmclock-old", function: 0x4000_0001, index: 0, register: .eax, bit: 0),
        CPUIDFeature(name: "pdpe1gb", function: 0x8000_0001, index: 0, register: .edx, bit: 26),
        CPUIDFeature(name: "rdtscp", function: 0x8000_0001, index: 0, register: .edx, bit: 27),
    ]

    /// The feature called `name`, if `--cpuid-mask` knows it.
    public static func named(_ name: String) -> CPUIDFeature? { known.first { $0.name == name.lowercased() } }
}

/// The CPUID a vCPU shows its guest: what KVM supports on this host, with the
/// fix-ups a guest expects and the features the user asked to hide removed.
public enum CPUIDConfiguration {
    /// `KVMKVMKVM\0\0\0`, the signature of leaf 0x40000000 that tells Linux it
    /// may use KVM's paravirtual features (kvmclock).
    static let kvmSignature: (ebx: UInt32, ecx: UInt32, edx: UInt32) = (0x4b4d_564b, 0x564b_4d56, 0x4d)

    /// The leaves for vCPU `vcpuID` (also its APIC id) of a machine with
    /// `vcpuCount` vCPUs, shown as one package of `vcpuCount` single-threaded
    /// cores: leaf 1 (initial APIC id, logical processor count, HTT), leaf 4
    /// (cores per package), leaves 0xB and 0x1F (x2APIC id and the SMT and core
    /// levels) and AMD's 0x80000008 (core count and APIC id bits) agree.
    public static func entries(supported: [CPUIDEntry], vcpuID: UInt32, vcpuCount: UInt32 = 1, hiding masked: [CPUIDFeature] = [])
        -> [CPUIDEntry]
    {
        let count = max(vcpuCount, 1)
        // APIC id bits a package needs for `count` cores: ceil(log2(count)).
        let coreBits = count <= 1 ? 0 : UInt32(UInt32.bitWidth - (count - 1).leadingZeroBitCount)
        var entries = supported.compactMap { entry -> CPUIDEntry? in
            var entry = entry
            switch entry.function {
            case 1:
                // EBX[31:24]: initial APIC id; [23:16]: logical processors per package.
                entry.ebx = (entry.ebx & 0x0000_ffff) | (vcpuID << 24) | (min(count, 255) << 16)
                // EDX[28] (HTT): EBX[23:16] is valid; there is more than one logical processor.
                if count > 1 { entry.edx |= 1 << 28 }
                // ECX[31]: running under a hypervisor, so the guest looks for leaf 0x40000000.
                entry.ecx |= 1 << 31
            case 4 where entry.eax & 0x1f != 0:
                // EAX[31:26]: cores per package - 1; [25:14]: logical processors
                // sharing this cache - 1 (each core its own L1 and L2, all of them the L3).
                let sharing = (entry.eax >> 5) & 0x7 >= 3 ? count - 1 : 0
                entry.eax = (entry.eax & 0x3fff) | (min(sharing, 0xfff) << 14) | (min(count - 1, 0x3f) << 26)
            case 0xb, 0x1f:
                return nil  // replaced below
            case 0x8000_0008:
                // ECX[7:0]: cores per package - 1; [15:12]: APIC id bits for them.
                entry.ecx = (entry.ecx & ~0xf0ff) | (min(count - 1, 0xff)) | (coreBits << 12)
            case 0x4000_0000:
                entry.ebx = kvmSignature.ebx
                entry.ecx = kvmSignature.ecx
                entry.edx = kvmSignature.edx
            default:
                break
            }
            return entry
        }
        for function: UInt32 in [0xb, 0x1f] where supported.contains(where: { $0.function == function }) {
            entries += extendedTopology(function: function, apicID: vcpuID, count: count, coreBits: coreBits)
        }
        if !entries.contains(where: { $0.function == 0x4000_0000 }) {
            entries.append(
                CPUIDEntry(function: 0x4000_0000, eax: 0x4000_0001, ebx: kvmSignature.ebx, ecx: kvmSignature.ecx, edx: kvmSignature.edx))
        }
        for feature in masked {
            for i in entries.indices where entries[i].function == feature.function && entries[i].index == feature.index {
                let clear = ~(UInt32(1) << UInt32(feature.bit))
                switch feature.register {
                case .eax: entries[i].eax &= clear
                case .ebx: entries[i].ebx &= clear
                case .ecx: entries[i].ecx &= clear
                case .edx: entries[i].edx &= clear
                }
            }
        }
        return entries
    }

    /// Leaf 0xB or 0x1F (Intel SDM, CPUID "Extended Topology Enumeration"):
    /// subleaf 0 the SMT level (one thread per core: shift 0, 1 processor),
    /// subleaf 1 the core level (shift `coreBits`, `count` processors),
    /// subleaf 2 the end of the list; EDX the x2APIC id in each.
    static func extendedTopology(function: UInt32, apicID: UInt32, count: UInt32, coreBits: UInt32) -> [CPUIDEntry] {
        let significantIndex: UInt32 = 1  // KVM_CPUID_FLAG_SIGNIFCANT_INDEX
        return [
            CPUIDEntry(function: function, index: 0, flags: significantIndex, eax: 0, ebx: 1, ecx: 1 << 8, edx: apicID),
            CPUIDEntry(function: function, index: 1, flags: significantIndex, eax: coreBits, ebx: count, ecx: 2 << 8 | 1, edx: apicID),
            CPUIDEntry(function: function, index: 2, flags: significantIndex, eax: 0, ebx: 0, ecx: 2, edx: apicID),
        ]
    }
}
