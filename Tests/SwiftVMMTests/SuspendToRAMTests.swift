import ACPI
import Devices
import Testing
import VMCore

@testable import SwiftVMM

/// S3 end to end: a real-mode guest that sets the FACS waking vector and an
/// RTC alarm, suspends through the PM1a control block, and, woken by the
/// alarm, reports that RAM was kept and why it woke.
@Suite(.serialized) struct SuspendToRAMTests {
    /// `firmware`-style real-mode code at 0x7000 (assembled with GNU as from
    /// the listing in the comments; `FACS` is patched in by `guest(facs:)`):
    ///
    ///     cli; out 'S' to COM1; movb $0x5a, 0x600          # a mark in RAM
    ///     es = 0xe000; movl $resume, %es:(FACS - 0xe0000)  # waking vector
    ///     RTC alarm seconds/minutes/hours = 0xc0 (don't care); status B |= AIE
    ///     outw 0x400 -> 0x606 (RTC_EN); outw 0x2400 -> 0x608 (SLP_TYP 1 | SLP_EN)
    ///     out 'N' to COM1; hlt                             # not suspended
    ///   resume:
    ///     out 'R', then the byte at 0x600, then RTC status C to COM1
    ///     inw 0x604 (PM1 status); out %ah -> 0xf4          # debug exit
    static let code: [UInt8] = [
        0xfa, 0xb0, 0x53, 0xba, 0xf8, 0x03, 0xee, 0xc6, 0x06, 0x00, 0x06, 0x5a,
        0xb8, 0x00, 0xe0, 0x8e, 0xc0, 0x26, 0x66, 0xc7, 0x06, 0xef, 0xbe, 0x52,
        0x70, 0x00, 0x00, 0xb0, 0x01, 0xe6, 0x70, 0xb0, 0xc0, 0xe6, 0x71, 0xb0,
        0x03, 0xe6, 0x70, 0xb0, 0xc0, 0xe6, 0x71, 0xb0, 0x05, 0xe6, 0x70, 0xb0,
        0xc0, 0xe6, 0x71, 0xb0, 0x0b, 0xe6, 0x70, 0xe4, 0x71, 0x0c, 0x20, 0xe6,
        0x71, 0xba, 0x06, 0x06, 0xb8, 0x00, 0x04, 0xef, 0xba, 0x08, 0x06, 0xb8,
        0x00, 0x24, 0xef, 0xb0, 0x4e, 0xba, 0xf8, 0x03, 0xee, 0xf4, 0xb0, 0x52,
        0xba, 0xf8, 0x03, 0xee, 0xa0, 0x00, 0x06, 0xee, 0xb0, 0x0c, 0xe6, 0x70,
        0xe4, 0x71, 0xee, 0xba, 0x04, 0x06, 0xed, 0x88, 0xe0, 0xe6, 0xf4, 0xf4,
    ]
    static let loadAddress: UInt64 = 0x7000
    /// Where the code keeps the waking vector's offset from 0xe0000 (a placeholder 0xbeef).
    static let facsOffsetAt = 21
    /// Where `resume` starts.
    static let resumeOffset: UInt64 = 0x52

    /// The code with the FACS address of a one-vCPU PC machine patched in.
    static func guest() throws -> MachineConfiguration.Guest {
        let tables = try ACPITableBuilder.build(PlatformSetup.acpiConfiguration(vcpuCount: 1), at: PlatformSetup.acpiBase)
        let facs = try #require(tables[signature: "FACS"]).address.rawValue
        let vector = facs + UInt64(ACPITableBuilder.facsWakingVectorOffset) - 0xe_0000
        var bytes = code
        #expect(bytes[facsOffsetAt] == 0xef && bytes[facsOffsetAt + 1] == 0xbe)
        bytes[facsOffsetAt] = UInt8(truncatingIfNeeded: vector)
        bytes[facsOffsetAt + 1] = UInt8(truncatingIfNeeded: vector >> 8)
        return .flat(bytes: bytes, mode: .real, loadAddress: loadAddress, entry: loadAddress)
    }

    func machine(output: SerialBufferOutput) throws -> Machine {
        try Machine(MachineConfiguration(guest: try Self.guest(), memorySize: 32 << 20, serialOutput: output, platform: .pc))
    }

    @Test func theRTCAlarmWakesASuspendedGuestAtItsWakingVectorWithRAMKept() throws {
        let output = SerialBufferOutput()
        let m = try machine(output: output)
        let start = ContinuousClock.now
        // PM1 status on waking: WAK_STS | RTC_STS, whose high byte is 0x84.
        #expect(try m.run(timeout: .seconds(20)) == .debugExit(status: 0x84))
        // 'S' before, never 'N'; 'R', the mark 0x5a, then status C's IRQF | AF after.
        #expect(output.bytes == [0x53, 0x52, 0x5a, 0xa0])
        // The alarm is at the next second boundary.
        #expect(ContinuousClock.now - start < .seconds(3))
        let facs = try #require(m.acpiTables?[signature: "FACS"])
        let vector = try m.memory.readInteger(at: GuestAddress(facs.address.rawValue + 12), as: UInt32.self)
        #expect(UInt64(vector) == Self.loadAddress + Self.resumeOffset)
    }

    @Test func dispatchReportsTheSuspendAndWakeResumesAtTheVector() throws {
        let output = SerialBufferOutput()
        let m = try machine(output: output)
        var reason: StopReason?
        try m.withDeadline(.seconds(20)) { () throws(MachineError) in
            while reason == nil { reason = try m.dispatch(try m.nextExit()) }
        }
        #expect(reason == .suspended)
        #expect(output.text == "S")
        // Woken by a request, not the alarm: RTC_STS and AF stay clear.
        try m.wake(by: .request)
        let special = try m.bootstrap.vcpu.specialRegisters()
        let registers = try m.bootstrap.vcpu.registers()
        let vector = Self.loadAddress + Self.resumeOffset
        #expect(special.cs.selector == UInt16(vector >> 4) && special.cs.base == vector & ~0xf)
        #expect(registers.rip == vector & 0xf)
        #expect(special.cr0 & 1 == 0)
        #expect(try m.run(timeout: .seconds(20)) == .debugExit(status: 0x80))
        #expect(output.bytes == [0x53, 0x52, 0x5a, 0x00])
    }

    @Test func aSuspendedGuestWithNoWakeEventSleepsUntilTheDeadline() throws {
        // Without AIE nothing wakes it: patch `or $0x20,%al` to `or $0,%al`.
        var bytes = try Self.guest()
        if case .flat(var code, let mode, let load, let entry) = bytes {
            #expect(code[57] == 0x0c && code[58] == 0x20)
            code[58] = 0
            bytes = .flat(bytes: code, mode: mode, loadAddress: load, entry: entry)
        }
        let output = SerialBufferOutput()
        let sleeper = try Machine(MachineConfiguration(guest: bytes, memorySize: 32 << 20, serialOutput: output, platform: .pc))
        #expect(try sleeper.run(timeout: .milliseconds(1500)) == .deadlineExpired)
        #expect(output.text == "S")
    }

    /// A suspended guest with no alarm set is woken by a key at the console:
    /// `run` sees the console's pending input (or the key already in the
    /// UART: the run loop may have moved it there before the guest slept)
    /// while it sleeps, wakes the guest at its vector with WAK_STS alone (no
    /// RTC_STS, no AF), and the key stays for the guest to read.
    @Test func aKeyAtTheConsoleWakesASuspendedGuest() throws {
        var bytes = try Self.guest()
        if case .flat(var code, let mode, let load, let entry) = bytes {
            code[58] = 0  // no AIE: only the console can wake it
            bytes = .flat(bytes: code, mode: mode, loadAddress: load, entry: entry)
        }
        let output = SerialBufferOutput()
        let m = try Machine(MachineConfiguration(guest: bytes, memorySize: 32 << 20, serialOutput: output, platform: .pc))
        let keys = PendingKeys([0x0d])
        m.serialInput = keys
        // And the key already in the UART, with nothing left at the console.
        let early = try Machine(MachineConfiguration(guest: bytes, memorySize: 32 << 20, serialOutput: SerialBufferOutput(), platform: .pc))
        _ = early.serial.enqueueInput([0x0d])
        #expect(try early.run(timeout: .seconds(20)) == .debugExit(status: 0x80))
        #expect(try m.run(timeout: .seconds(20)) == .debugExit(status: 0x80))
        #expect(output.bytes == [0x53, 0x52, 0x5a, 0x00])
        #expect(keys.hasPendingInput || m.serial.hasPendingInput, "the wake does not eat the key")
    }
}

/// A console with keys already typed.
private final class PendingKeys: SerialInputSource {
    private var keys: [UInt8]
    init(_ keys: [UInt8]) { self.keys = keys }
    var hasPendingInput: Bool { !keys.isEmpty }
    func takeInput(max: Int) -> [UInt8] {
        let taken = Array(keys.prefix(max))
        keys.removeFirst(taken.count)
        return taken
    }
}
