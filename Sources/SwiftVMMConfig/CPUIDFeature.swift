// The name table is pure data, so it lives with the configuration: a config
// file's `cpuid_mask` is checked against it without KVM; `CPUIDConfiguration`
// in SwiftVMM applies the features to the leaves KVM reports.

/// A CPU feature a user can hide from the guest with `--cpuid-mask` (or a
/// config file's `cpuid_mask`): which register bit of which CPUID leaf it is.
public struct CPUIDFeature: Hashable, Sendable {
    /// The CPUID output register that holds a feature's bit.
    public enum Register: Sendable { case eax, ebx, ecx, edx }
    /// Linux's /proc/cpuinfo name, as `--cpuid-mask` takes it.
    public var name: String
    /// The CPUID leaf (EAX on input).
    public var function: UInt32
    /// The subleaf (ECX on input).
    public var index: UInt32
    /// The output register that holds the bit.
    public var register: Register
    /// The bit's number in that register.
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
        CPUIDFeature(name: "kvm-nop-io-delay", function: 0x4000_0001, index: 0, register: .eax, bit: 1),
        CPUIDFeature(name: "kvm-async-pf", function: 0x4000_0001, index: 0, register: .eax, bit: 4),
        CPUIDFeature(name: "kvm-steal-time", function: 0x4000_0001, index: 0, register: .eax, bit: 5),
        CPUIDFeature(name: "kvm-pv-eoi", function: 0x4000_0001, index: 0, register: .eax, bit: 6),
        CPUIDFeature(name: "kvm-pv-unhalt", function: 0x4000_0001, index: 0, register: .eax, bit: 7),
        CPUIDFeature(name: "kvm-pv-tlb-flush", function: 0x4000_0001, index: 0, register: .eax, bit: 9),
        CPUIDFeature(name: "kvm-pv-send-ipi", function: 0x4000_0001, index: 0, register: .eax, bit: 11),
        CPUIDFeature(name: "kvm-poll-control", function: 0x4000_0001, index: 0, register: .eax, bit: 12),
        CPUIDFeature(name: "kvm-pv-sched-yield", function: 0x4000_0001, index: 0, register: .eax, bit: 13),
        CPUIDFeature(name: "pdpe1gb", function: 0x8000_0001, index: 0, register: .edx, bit: 26),
        CPUIDFeature(name: "rdtscp", function: 0x8000_0001, index: 0, register: .edx, bit: 27),
    ]

    /// The feature called `name`, if `--cpuid-mask` knows it.
    public static func named(_ name: String) -> CPUIDFeature? { known.first { $0.name == name.lowercased() } }
}
