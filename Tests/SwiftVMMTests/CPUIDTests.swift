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

    @Test func maskedFeaturesAreHidden() throws {
        let hidden = try ["xsave", "cx16", "smep"].map { try #require(CPUIDFeature.named($0)) }
        let entries = CPUIDConfiguration.entries(supported: supported, vcpuID: 0, hiding: hidden)
        let leaf1 = try #require(entries.first { $0.function == 1 })
        #expect(leaf1.ecx & (1 << 26) == 0 && leaf1.ecx & (1 << 13) == 0)
        #expect(leaf1.ecx & (1 << 23) != 0, "popcnt untouched")
        #expect(try #require(entries.first { $0.function == 7 }).ebx & (1 << 7) == 0)
        #expect(CPUIDFeature.named("no-such-feature") == nil)
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
}
