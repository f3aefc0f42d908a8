import Devices
import Firmware
import Foundation
import Testing
import VMCore

@testable import SwiftVMM

/// The PC platform Linux guests get: in-kernel interrupt controllers and PIT,
/// the legacy devices, ACPI tables and the power paths.
@Suite(.serialized) struct PCPlatformTests {
    func machine(_ guest: MachineConfiguration.Guest, output: SerialBufferOutput = SerialBufferOutput()) throws -> Machine {
        try Machine(MachineConfiguration(guest: guest, memorySize: 32 << 20, serialOutput: output, platform: .pc))
    }

    @Test func aGuestHaltedForGoodEndsTheRunEvenThoughKVMKeepsTheHLT() throws {
        let output = SerialBufferOutput()
        let m = try machine(.firmware(.realHalt), output: output)
        #expect(try m.run(timeout: .seconds(20)) == .halted(interruptsEnabled: false))
        #expect(output.text == "halting\n")
    }

    @Test func aGuestWaitingForInterruptsIsNotMistakenForHalted() throws {
        let m = try machine(.firmware(.realHaltSti))
        #expect(try m.run(timeout: .seconds(1)) == .deadlineExpired)
    }

    /// The tables say ISA IRQ 0 is IOAPIC pin 2; the in-kernel PIT's timer
    /// must arrive there, as on QEMU's PC, or a guest that believes the
    /// tables waits forever.
    @Test func thePITTimerReachesIOAPICPin2AsTheTablesSay() throws {
        let m = try machine(.firmware(.protectedIoapicTimer))
        #expect(try m.run(timeout: .seconds(20)) == .debugExit(status: 0x30))
        #expect(PlatformSetup.pcInterruptRoutes.contains { $0.gsi == 0 && $0.chip == .ioapic && $0.pin == 2 })
    }

    @Test func theKeyboardControllerResetEndsTheRunAsAReset() throws {
        // mov $0xfe,%al; out %al,$0x64; hlt  (what `reboot=k` does)
        let m = try machine(.flat(bytes: [0xb0, 0xfe, 0xe6, 0x64, 0xf4], mode: .real))
        #expect(try m.run(timeout: .seconds(20)) == .reset)
        #expect(StopReason.reset.exitStatus == 0)
    }

    @Test func writingS5ToTheACPISleepControlRegisterPowersOff() throws {
        // mov $0x34,%al (SLP_EN | SLP_TYP=5); mov $0x600,%dx; out %al,%dx; hlt
        let m = try machine(.flat(bytes: [0xb0, 0x34, 0xba, 0x00, 0x06, 0xee, 0xf4], mode: .real))
        #expect(try m.run(timeout: .seconds(20)) == .powerOff)
    }

    @Test func theACPIResetRegisterResets() throws {
        // mov $0x01,%al; mov $0x602,%dx; out %al,%dx; hlt
        let m = try machine(.flat(bytes: [0xb0, 0x01, 0xba, 0x02, 0x06, 0xee, 0xf4], mode: .real))
        #expect(try m.run(timeout: .seconds(20)) == .reset)
    }

    @Test func acpiTablesAreInGuestMemoryWhereTheRSDPSaysAndTheE820Reserves() throws {
        let m = try machine(.firmware(.realHello))
        let tables = try #require(m.acpiTables)
        #expect(tables.rsdpAddress == GuestAddress(0xe_0000))
        let signature = try m.memory.read(count: 8, at: tables.rsdpAddress)
        #expect(signature == Array("RSD PTR ".utf8))
        let xsdt = try m.memory.read(count: 4, at: try #require(tables[signature: "XSDT"]).address)
        #expect(xsdt == Array("XSDT".utf8))
    }

    @Test func theCMOSClockReportsTheHostsYear() throws {
        // mov $0x09,%al; out %al,$0x70; in $0x71,%al; mov %al,%bl;
        // mov $0x32,%al; out %al,$0x70; in $0x71,%al; mov %al,%bh; cli; hlt
        let code: [UInt8] = [0xb0, 0x09, 0xe6, 0x70, 0xe4, 0x71, 0x88, 0xc3, 0xb0, 0x32, 0xe6, 0x70, 0xe4, 0x71, 0x88, 0xc7, 0xfa, 0xf4]
        let m = try machine(.flat(bytes: code, mode: .real))
        #expect(try m.run(timeout: .seconds(20)) == .halted(interruptsEnabled: false))
        let bx = try m.registers().rbx
        let year = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: Date()).year ?? 0
        func bcd(_ value: Int) -> UInt64 { UInt64((value / 10) << 4 | value % 10) }
        #expect(bx & 0xff == bcd(year % 100), "year in BCD")
        #expect(bx >> 8 & 0xff == bcd(year / 100), "century in BCD")
    }

    @Test func serialInterruptsReachTheInKernelIRQChip() throws {
        // Enable the THR-empty interrupt with OUT2 set: the UART raises IRQ 4 through KVM_IRQ_LINE.
        // mov $0x3fc,%dx; mov $0x08,%al; out %al,%dx (MCR.OUT2); mov $0x3f9,%dx; mov $0x02,%al; out %al,%dx (IER.ETBEI); cli; hlt
        let code: [UInt8] = [0xba, 0xfc, 0x03, 0xb0, 0x08, 0xee, 0xba, 0xf9, 0x03, 0xb0, 0x02, 0xee, 0xfa, 0xf4]
        let m = try machine(.flat(bytes: code, mode: .real))
        #expect(try m.run(timeout: .seconds(20)) == .halted(interruptsEnabled: false))
        #expect(m.serial.interruptAsserted)
    }
}

@Suite struct PCPlatformInt3Tests {
    @Test func aGuestKernelsInt3ReachesItsOwnHandler() throws {
        let machine = try Machine(
            MachineConfiguration(guest: .firmware(.longInt3), memorySize: 32 << 20, serialOutput: SerialBufferOutput(), platform: .pc))
        #expect(try machine.run(timeout: .seconds(20)) == .debugExit(status: 0x33))
    }
}
