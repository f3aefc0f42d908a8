import Devices
import Firmware
import KVM
import Testing
import VMCore
import X86Boot

@testable import SwiftVMM

/// Several vCPUs: the guest starts its application processors with INIT and
/// SIPI, each runs on a thread of its own, and whichever vCPU ends the machine
/// ends it for all.
@Suite(.serialized) struct SMPTests {
    func machine(
        _ guest: MachineConfiguration.Guest, vcpus: Int, platform: MachineConfiguration.Platform? = nil,
        output: SerialBufferOutput = SerialBufferOutput()
    ) throws -> Machine {
        try Machine(MachineConfiguration(guest: guest, memorySize: 16 << 20, serialOutput: output, platform: platform, vcpuCount: vcpus))
    }

    /// The lines the SMP guest prints, checked against the processors the machine has.
    func expectEveryProcessorReportedOnce(_ text: String, count: Int) {
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.first == "cpu 00 bsp", "\(text)")
        let reported = lines.filter { $0.hasPrefix("cpu ") }
        let ids = reported.compactMap { Int($0.dropFirst(4).prefix(2), radix: 16) }
        #expect(ids.sorted() == Array(0..<count), "every APIC id once: \(text)")
        #expect(reported.dropFirst().allSatisfy { $0.hasSuffix(" ap") }, "\(text)")
        #expect(lines.last == "smp: \(String(format2: count)) cpus", "\(text)")
    }

    @Test(arguments: [2, 4])
    func theGuestBringsUpEveryApplicationProcessorWithINITAndSIPI(count: Int) throws {
        let output = SerialBufferOutput()
        let m = try machine(.firmware(.protectedSmp), vcpus: count, output: output)
        #expect(m.platform == .pc, "several vCPUs choose the PC platform")
        #expect(m.vcpuCount == count)
        let reason = try m.run(timeout: .seconds(60))
        #expect(reason == .debugExit(status: UInt32(count)), "\(output.text)")
        expectEveryProcessorReportedOnce(output.text, count: count)
        #expect(m.exitCount > 0)
    }

    @Test func applicationProcessorsWaitForSIPIUntilTheGuestStartsThem() throws {
        let m = try machine(.firmware(.protectedSmp), vcpus: 3)
        #expect(try m.applicationProcessorMPStates() == [.uninitialized, .uninitialized], "KVM_MP_STATE_UNINITIALIZED")
    }

    @Test func oneProcessorOnThePCPlatformReportsAlone() throws {
        let output = SerialBufferOutput()
        let m = try machine(.firmware(.protectedSmp), vcpus: 1, platform: .pc, output: output)
        #expect(try m.run(timeout: .seconds(30)) == .debugExit(status: 1))
        #expect(output.text == "cpu 00 bsp\nsmp: 01 cpus\n")
    }

    @Test func withoutThePCPlatformThereIsNoMPTable() throws {
        let m = try machine(.firmware(.protectedSmp), vcpus: 1)
        #expect(m.mpTable == nil && m.acpiTables == nil)
        #expect(try m.run(timeout: .seconds(30)) == .debugExit(status: 3))
    }

    @Test func theMPTableAndMADTInGuestMemoryListEveryProcessor() throws {
        let m = try machine(.firmware(.protectedHello), vcpus: 4)
        let table = try #require(m.mpTable)
        #expect(table.base == PlatformSetup.mpTableBase)
        #expect(try m.memory.read(count: Int(table.size), at: table.base) == table.bytes)
        let parsed = try MPTableBuilder.build(MPConfiguration(processorCount: 4), at: table.base)
        #expect(parsed == table)
        let madt = try #require(m.acpiTables?[signature: "APIC"])
        let localAPICs = stride(from: 44, to: madt.bytes.count, by: 1).filter { madt.bytes[$0] == 0 && madt.bytes[$0 + 1] == 8 }
        #expect(localAPICs.count >= 4)
    }

    @Test func anApplicationProcessorCanEndTheMachine() throws {
        // BSP (protected mode): INIT and SIPI (vector 0x08) to APIC id 1, then spin.
        let bsp: [UInt8] =
            [0xc7, 0x05, 0x10, 0x03, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x01]  // movl $0x01000000, ICR high
            + [0xc7, 0x05, 0x00, 0x03, 0xe0, 0xfe, 0x00, 0x45, 0x00, 0x00]  // movl $0x4500, ICR low (INIT)
            + [0xc7, 0x05, 0x00, 0x03, 0xe0, 0xfe, 0x08, 0x46, 0x00, 0x00]  // movl $0x4608, ICR low (SIPI)
            + [0xeb, 0xfe]  // jmp .
        // AP (real mode at 0x800:0): mov $0x42,%al; out %al,$0xf4; hlt
        let ap: [UInt8] = [0xb0, 0x42, 0xe6, 0xf4, 0xf4]
        let m = try machine(.flat(bytes: bsp, mode: .protected), vcpus: 2)
        try m.memory.write(ap, at: GuestAddress(0x8000))
        #expect(try m.run(timeout: .seconds(30)) == .debugExit(status: 0x42))
        #expect(m.cpuStateReport().hasPrefix("vCPU 1:"), "the report is of the vCPU that stopped")
    }

    @Test func aDeadlineEndsAMachineWhoseApplicationProcessorsWereNeverStarted() throws {
        // jmp . : the BSP spins, the APs wait for a SIPI that never comes; all are kicked and joined.
        let m = try machine(.flat(bytes: [0xeb, 0xfe], mode: .protected), vcpus: 3)
        let start = ContinuousClock.now
        #expect(try m.run(timeout: .milliseconds(500)) == .deadlineExpired)
        #expect(ContinuousClock.now - start < .seconds(20))
    }

    @Test func severalVCPUsNeedThePCPlatform() throws {
        #expect {
            try machine(.firmware(.realHello), vcpus: 2, platform: .minimal)
        } throws: { error in
            guard case MachineError.multipleVCPUsNeedPCPlatform(2) = error else { return false }
            return "\(error)".contains("PC platform")
        }
    }

    @Test(arguments: [0, -1, 256, 100_000])
    func vcpuCountsOutOfRangeAreRefused(count: Int) throws {
        #expect {
            try machine(.firmware(.realHello), vcpus: count, platform: .pc)
        } throws: { error in
            guard case MachineError.invalidVCPUCount(count, let maximum) = error else { return false }
            return maximum >= 1 && maximum <= 255
        }
    }
}

extension String {
    /// Two lower-case hex digits, as the SMP guest prints numbers.
    fileprivate init(format2 value: Int) {
        let digits = String(value, radix: 16)
        self = digits.count < 2 ? "0" + digits : digits
    }
}
