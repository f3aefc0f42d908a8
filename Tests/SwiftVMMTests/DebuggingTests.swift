import Devices
import Firmware
import SwiftVMM
import Testing
import VMCore

/// The machine's debugging API: any vCPU's registers, guest-virtual memory,
/// one-instruction steps, and per-slot guest debugging.
@Suite struct DebuggingTests {
    func machine(_ guest: MachineConfiguration.Guest, vcpus: Int = 1) throws -> Machine {
        try Machine(MachineConfiguration(guest: guest, memorySize: 32 << 20, serialOutput: SerialBufferOutput(), vcpuCount: vcpus))
    }

    @Test func aStepOverAnOutIsOneInstruction() throws {
        // mov $0x41, %al; out %al, $0x80; out %al, $0x80; mov $0, %al; out %al, $0xf4
        let vm = try machine(.flat(bytes: [0xb0, 0x41, 0xe6, 0x80, 0xe6, 0x80, 0xb0, 0x00, 0xe6, 0xf4], mode: .real))
        let entry = try vm.registers(vcpu: 0).rip
        #expect(try vm.stepInstruction() == nil)
        #expect(try vm.registers(vcpu: 0).rip == entry + 2)
        #expect(try vm.stepInstruction() == nil)
        #expect(try vm.registers(vcpu: 0).rip == entry + 4, "the OUT alone, its access completed")
        #expect(vm.postCodes.writeCount == 1 && vm.postCodes.lastCode == 0x41)
        #expect(try vm.stepInstruction() == nil)
        #expect(try vm.registers(vcpu: 0).rip == entry + 6)
        #expect(vm.postCodes.writeCount == 2)
    }

    @Test func virtualMemoryGoesThroughThePageTablesOfLongMode() throws {
        let vm = try machine(.firmware(.longHello))
        let special = try vm.specialRegisters(vcpu: 0)
        #expect(special.cr0 & (1 << 31) != 0, "paging is on")
        let rip = try vm.registers(vcpu: 0).rip
        // The VMM's page tables map low memory one to one.
        #expect(try vm.translate(rip) == rip)
        #expect(try vm.readVirtualMemory(at: rip, count: 4) == vm.memory.read(count: 4, at: GuestAddress(rip)))
        try vm.writeVirtualMemory([0xaa, 0xbb], at: 0x20ffe)
        #expect(try vm.memory.read(count: 2, at: GuestAddress(0x20ffe)) == [0xaa, 0xbb])
        #expect(throws: MachineError.self) { try vm.readVirtualMemory(at: 0xffff_8000_0000_0000, count: 1) }
        #expect(throws: MachineError.self) { try vm.registers(vcpu: 1) }
    }

    @Test func watchpointSlotsSetDR7AndLeaveStepsAlone() throws {
        // mov $0x5a, %eax; mov %eax, (0x3000); mov $0, %al; out %al, $0xf4
        let vm = try machine(.flat(bytes: [0x66, 0xb8, 0x5a, 0, 0, 0, 0x66, 0xa3, 0x00, 0x30, 0xb0, 0x00, 0xe6, 0xf4], mode: .real))
        let slot = HardwareBreakpoint(address: 0x3000, trigger: .write, length: 4)
        #expect(slot.dr7Bits(slot: 1) == 1 << 3 | 0b01 << 20 | 0b11 << 22)
        try vm.setGuestDebug(GuestDebugConfiguration(singleStep: true, slots: [nil, slot]))
        _ = try vm.stepInstruction()
        _ = try vm.stepInstruction()
        #expect(try vm.readVirtualMemory(at: 0x3000, count: 4) == [0x5a, 0, 0, 0])
        try vm.setGuestDebug(GuestDebugConfiguration())
        #expect(try vm.run(timeout: .seconds(10)) == .debugExit(status: 0))
    }
}
