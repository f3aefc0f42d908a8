import Devices
import Testing
import VMCore

@testable import SwiftVMM

/// Images where swiftvmm's GDT, page tables and stack usually go boot: the
/// structures move to RAM the image leaves free.
@Suite struct BootPlacementBootTests {
    /// An ELF64 whose first PT_LOAD is its own headers at address 0 (what
    /// `ld.lld --image-base=0` makes) and whose code fills 0x1000-0x8000, so
    /// the usual GDT (0x500), page tables (0x1000) and stack (below 0x1000)
    /// all collide. The code pushes and pops through the stack it was given
    /// and exits with 0x2a.
    static func elfOverTheUsualStructures() -> [UInt8] {
        func le(_ value: UInt64, _ size: Int) -> [UInt8] { (0..<size).map { UInt8(truncatingIfNeeded: value >> (UInt64($0) * 8)) } }
        // mov $0x2a, %eax; push %rax; pop %rbx; mov %ebx, %eax; out %eax, $0xf4
        let code: [UInt8] = [0xb8, 0x2a, 0, 0, 0, 0x50, 0x5b, 0x89, 0xd8, 0xe7, 0xf4]
        let headersSize: UInt64 = 64 + 2 * 56
        var bytes: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8)
        bytes += le(2, 2) + le(62, 2) + le(1, 4) + le(0x1000, 8) + le(64, 8) + le(0, 8)
        bytes += le(0, 4) + le(64, 2) + le(56, 2) + le(2, 2) + le(64, 2) + le(0, 2) + le(0, 2)
        // PT_LOAD 0: the headers, at 0, 4 KiB in memory.
        bytes += le(1, 4) + le(4, 4) + le(0, 8) + le(0, 8) + le(0, 8) + le(headersSize, 8) + le(0x1000, 8) + le(0x1000, 8)
        // PT_LOAD 1: the code, at 0x1000, 28 KiB in memory.
        bytes += le(1, 4) + le(5, 4) + le(0x1000, 8) + le(0x1000, 8) + le(0x1000, 8) + le(UInt64(code.count), 8) + le(0x7000, 8)
        bytes += le(0x1000, 8)
        bytes += [UInt8](repeating: 0, count: 0x1000 - bytes.count)
        return bytes + code
    }

    @Test func anELFWithAHeadersOnlySegmentAtZeroBoots() throws {
        let machine = try Machine(
            MachineConfiguration(
                guest: .elf(bytes: Self.elfOverTheUsualStructures()), memorySize: 16 << 20, serialOutput: SerialBufferOutput()))
        #expect(try machine.run(timeout: .seconds(10)) == .debugExit(status: 0x2a))
        let registers = try machine.registers()
        let special = try machine.specialRegisters()
        #expect(registers.rbx == 0x2a, "the push and pop went through the stack")
        #expect(registers.rsp >= 0x8000, "the stack is outside the image: \(hex(registers.rsp))")
        #expect(special.cr3 >= 0x8000 && special.gdt.base >= 0x8000, "cr3 \(hex(special.cr3)), GDT \(hex(special.gdt.base))")
    }
}
