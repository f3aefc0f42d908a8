import Devices
import KVM
import Testing
import VMCore

@testable import SwiftVMM

@Suite struct CPUIDConfigurationTests {
    let supported = [
        CPUIDEntry(function: 0, eax: 0xd),
        CPUIDEntry(function: 1, ebx: 0x0000_0800, ecx: 0x7ffa_3203, edx: 0x0f8b_fbff),
        CPUIDEntry(function: 7, ebx: 0x0000_07a9),
        CPUIDEntry(function: 0xb, index: 1, edx: 7),
    ]

    @Test func theAPICIdAndHypervisorBitAreSet() {
        let entries = CPUIDConfiguration.entries(supported: supported, vcpuID: 3, vcpuCount: 4)
        let leaf1 = entries.first { $0.function == 1 }
        #expect(leaf1?.ebx == 0x0304_0800, "APIC id 3, 4 logical processors")
        #expect(leaf1.map { $0.ecx >> 31 } == 1)
        #expect(entries.first { $0.function == 0xb }?.edx == 3)
        let signature = entries.first { $0.function == 0x4000_0000 }
        #expect(signature?.ebx == 0x4b4d_564b && signature?.ecx == 0x564b_4d56 && signature?.edx == 0x4d, "KVMKVMKVM")
    }

    @Test func theTopologyIsOnePackageOfSingleThreadedCores() throws {
        let host =
            supported + [
                CPUIDEntry(function: 4, eax: 0x0400_4121), CPUIDEntry(function: 4, index: 3, eax: 0x0400_4163),
                CPUIDEntry(function: 0x8000_0008, ecx: 0x7001),
            ]
        for (id, count) in [(0, 1), (1, 2), (3, 4), (4, 5)] as [(UInt32, UInt32)] {
            let entries = CPUIDConfiguration.entries(supported: host, vcpuID: id, vcpuCount: count)
            let bits = UInt32(count <= 1 ? 0 : 32 - (count - 1).leadingZeroBitCount)
            let leaf1 = try #require(entries.first { $0.function == 1 })
            #expect(leaf1.ebx >> 24 == id && (leaf1.ebx >> 16) & 0xff == count)
            #expect((leaf1.edx >> 28) & 1 == (count > 1 ? 1 : 0), "HTT only with several processors")
            let topology = entries.filter { $0.function == 0xb }.sorted { $0.index < $1.index }
            #expect(topology.map(\.index) == [0, 1, 2])
            #expect(topology.allSatisfy { $0.edx == id && $0.flags == 1 }, "x2APIC id in every subleaf")
            #expect(topology.map { $0.ecx >> 8 & 0xff } == [1, 2, 0], "SMT, core, end")
            #expect(topology.map(\.ebx) == [1, count, 0] && topology[1].eax == bits)
            #expect(entries.filter { $0.function == 4 }.allSatisfy { $0.eax >> 26 == count - 1 }, "cores per package - 1")
            #expect(entries.first { $0.function == 4 && $0.index == 3 }.map { ($0.eax >> 14) & 0xfff } == count - 1, "the L3 is shared")
            #expect(entries.first { $0.function == 4 && $0.index == 0 }.map { ($0.eax >> 14) & 0xfff } == 0, "the L1 is not")
            let amd = try #require(entries.first { $0.function == 0x8000_0008 })
            #expect(amd.ecx & 0xff == count - 1 && (amd.ecx >> 12) & 0xf == bits)
        }
    }

    @Test func maskedFeaturesAreHidden() throws {
        let hidden = try ["xsave", "cx16", "smep"].map { try #require(CPUIDFeature.named($0)) }
        let entries = CPUIDConfiguration.entries(supported: supported, vcpuID: 0, hiding: hidden)
        let leaf1 = try #require(entries.first { $0.function == 1 })
        #expect(leaf1.ecx & (1 << 26) == 0 && leaf1.ecx & (1 << 13) == 0)
        #expect(leaf1.ecx & (1 << 23) != 0, "popcnt untouched")
        #expect(try #require(entries.first { $0.function == 7 }).ebx & (1 << 7) == 0)
        #expect(CPUIDFeature.named("no-such-feature") == nil)
    }

    @Test func hidingXSAVEHidesWhatDependsOnItAndEveryLeaf0xDSubleaf() throws {
        let host =
            supported.filter { $0.function != 7 } + [
                CPUIDEntry(function: 7, index: 0, flags: 1, eax: 0, ebx: 1 << 5 | 1 << 16, ecx: 0, edx: 0),
                CPUIDEntry(function: 0xd, index: 0, flags: 1, eax: 0xe7, ebx: 0x340, ecx: 0xa88, edx: 0),
                CPUIDEntry(function: 0xd, index: 1, flags: 1, eax: 0xf, ebx: 0, ecx: 0, edx: 0),
                CPUIDEntry(function: 0xd, index: 2, flags: 1, eax: 0x100, ebx: 0x240, ecx: 0, edx: 0),
            ]
        let entries = CPUIDConfiguration.entries(supported: host, vcpuID: 0, hiding: [try #require(CPUIDFeature.named("xsave"))])
        let leaf1 = try #require(entries.first { $0.function == 1 })
        #expect(leaf1.ecx & (1 << 26 | 1 << 28 | 1 << 29 | 1 << 12) == 0, "XSAVE, AVX, F16C, FMA")
        #expect(try #require(entries.first { $0.function == 7 }).ebx & (1 << 5 | 1 << 16) == 0, "AVX2, AVX-512F")
        for leaf in entries where leaf.function == 0xd {
            #expect([leaf.eax, leaf.ebx, leaf.ecx, leaf.edx] == [0, 0, 0, 0], "leaf 0xD sub-leaf \(leaf.index)")
        }
        let untouched = CPUIDConfiguration.entries(supported: host, vcpuID: 0, hiding: [try #require(CPUIDFeature.named("avx2"))])
        #expect(try #require(untouched.first { $0.function == 0xd && $0.index == 0 }).eax == 0xe7)
    }

    @Test func theGuestSeesTheMask() throws {
        // mov $1,%eax; cpuid; cli; hlt (long mode)
        let output = SerialBufferOutput()
        let configuration = MachineConfiguration(
            guest: .flat(bytes: [0xb8, 0x01, 0, 0, 0, 0x0f, 0xa2, 0xfa, 0xf4], mode: .long), memorySize: 16 << 20, serialOutput: output,
            hiddenCPUFeatures: [try #require(CPUIDFeature.named("cx16"))])
        let machine = try Machine(configuration)
        #expect(try machine.run(timeout: .seconds(10)) == .halted(interruptsEnabled: false))
        let ecx = try machine.registers().rcx
        // Only CX16 is checked: KVM's PVM back end reports most other leaf-1
        // ECX bits (XSAVE, RDRAND, POPCNT, ...) as the host has them whatever
        // the VMM sets, so a kernel there needs `noxsave` on its command line.
        #expect(ecx & (1 << 13) == 0, "CX16 hidden")
        #expect(ecx & (1 << 31) != 0, "hypervisor bit")
    }

    /// The probe against what a guest sees: a real-mode `vmcall` followed by a
    /// debug-exit write either gets there or is still running at the deadline,
    /// and the probe must say the same.
    @Test func theHypercallProbeSaysWhatAGuestFinds() throws {
        // xor %eax,%eax; vmcall; mov $0xf4,%dx; mov $7,%al; out %al,%dx; hlt (real mode)
        let code: [UInt8] = [0x66, 0x31, 0xc0, 0x0f, 0x01, 0xc1, 0xba, 0xf4, 0x00, 0xb0, 0x07, 0xee, 0xf4]
        let machine = try Machine(MachineConfiguration(guest: .flat(bytes: code, mode: .real), memorySize: 16 << 20))
        let stop = try machine.run(timeout: .seconds(3))
        #expect([.debugExit(status: 7), .deadlineExpired].contains(stop), "\(stop)")
        #expect(HypercallProbe.hypercallsComplete == (stop == .debugExit(status: 7)))
    }

    /// With two vCPUs, the KVM features Linux uses through hypercalls are in
    /// leaf 0x40000001 exactly where hypercalls complete; with one they are
    /// never hidden on the probe's account (a lone CPU makes no such calls).
    @Test func hypercallFeaturesAreHiddenWhereHypercallsHang() throws {
        let needing: UInt32 = 1 << 7 | 1 << 11 | 1 << 13  // PV_UNHALT, PV_SEND_IPI, PV_SCHED_YIELD
        let offered = try KVMSystem().supportedCPUID().first { $0.function == 0x4000_0001 }?.eax ?? 0
        for count in [1, 2] {
            // mov $0x40000001,%eax; cpuid; cli; hlt (long mode); the other vCPU waits for a SIPI.
            let configuration = MachineConfiguration(
                guest: .flat(bytes: [0xb8, 0x01, 0, 0, 0x40, 0x0f, 0xa2, 0xfa, 0xf4], mode: .long), memorySize: 16 << 20,
                vcpuCount: count)
            let machine = try Machine(configuration)
            #expect(try machine.run(timeout: .seconds(10)) == .halted(interruptsEnabled: false))
            let seen = UInt32(truncatingIfNeeded: try machine.registers().rax)
            let expected = count > 1 && !HypercallProbe.hypercallsComplete ? offered & ~needing : offered
            #expect(seen & needing == expected & needing, "\(count) vCPUs: leaf 0x40000001 EAX \(String(seen, radix: 16))")
        }
    }
}
