import KVM
import SwiftVMMConfig

/// The CPUID a vCPU shows its guest: what KVM supports on this host, with the
/// fix-ups a guest expects and the features the user asked to hide removed.
public enum CPUIDConfiguration {
    /// `KVMKVMKVM\0\0\0`, the signature of leaf 0x40000000 that tells Linux it
    /// may use KVM's paravirtual features (kvmclock).
    static let kvmSignature: (ebx: UInt32, ecx: UInt32, edx: UInt32) = (0x4b4d_564b, 0x564b_4d56, 0x4d)

    /// CPUID 0x80000007 EDX[8]: the TSC runs at a constant rate in every
    /// power state (Linux then prefers it to kvmclock as its clocksource).
    static let invariantTSC: UInt32 = 1 << 8

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
            case 0x8000_0007:
                // EDX[8], the invariant TSC, stays hidden, as QEMU hides it
                // unless asked (it blocks migration there) and Xen always
                // does: a snapshot, clone or migration moves the guest to
                // another time, and where the host cannot offset the TSC
                // (this project's PVM host: `rdtsc` reads the host's TSC and
                // KVM ignores a host-initiated IA32_TSC write) the TSC of a
                // restored guest jumps by the time it was away. Linux then
                // keeps its time by kvmclock, which KVM_SET_CLOCK does hold.
                entry.edx &= ~invariantTSC
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
        let hidden = withDependents(masked)
        if hidden.contains(where: { $0.name == "xsave" }) {
            // Without XSAVE there is no state-component enumeration: leaf 0xD
            // reads as zeros in every sub-leaf, as on a CPU without it.
            for i in entries.indices where entries[i].function == 0xd {
                entries[i].eax = 0
                entries[i].ebx = 0
                entries[i].ecx = 0
                entries[i].edx = 0
            }
        }
        for feature in hidden {
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

    /// Features that cannot be there without another: a kernel that sees
    /// AVX but no XSAVE (or AVX2 but no AVX) takes a path no CPU has.
    static let dependents: [String: [String]] = [
        "xsave": ["avx", "xsaveopt", "xsavec", "xsaves"],
        "avx": ["avx2", "fma", "f16c", "avx512f"],
    ]

    /// `masked` and every feature that depends on one of them, transitively.
    static func withDependents(_ masked: [CPUIDFeature]) -> [CPUIDFeature] {
        var result = masked
        var pending = masked.map(\.name)
        while let name = pending.popLast() {
            for dependent in dependents[name] ?? [] where !result.contains(where: { $0.name == dependent }) {
                if let feature = CPUIDFeature.named(dependent) {
                    result.append(feature)
                    pending.append(dependent)
                }
            }
        }
        return result
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
