import SwiftVMM
import Testing
import VMCore
import VMMTesting

/// `TestVM.watch(address:length:on:)`: a data watchpoint stops the guest
/// right after the instruction that wrote the watched bytes.
@Suite struct WatchpointTests {
    // mov $0x5a, %eax; mov %eax, (0x3000); nop; mov $0, %al; out %al, $0xf4; hlt (real mode)
    static let code: [UInt8] = [0x66, 0xb8, 0x5a, 0, 0, 0, 0x66, 0xa3, 0x00, 0x30, 0x90, 0xb0, 0x00, 0xe6, 0xf4, 0xf4]

    @Test func aWriteWatchpointStopsRightAfterTheWrite() throws {
        let vm = try TestVM(code: Self.code)
        let entry = vm.machine.image.entry
        try vm.watch(address: 0x3000, length: 4, on: .write)
        let exit = try vm.run(until: .debugTrap())
        guard case .debug(let info) = exit else {
            Issue.record("expected a debug exit, got \(exit)")
            return
        }
        #expect(info.firedSlots == [0])
        #expect(try vm.registers().rip == entry + 10, "right after the mov to 0x3000")
        #expect(try vm.read(count: 4, at: 0x3000) == [0x5a, 0, 0, 0])
        try vm.unwatch(address: 0x3000)
        try vm.run(until: .debugExit(status: 0))
    }

    @Test func watchpointsAreCheckedAndShareTheFourSlots() throws {
        let vm = try TestVM(code: Self.code)
        #expect(throws: VMTestError.self) { try vm.watch(address: 0x3000, length: 3, on: .write) }
        #expect(throws: VMTestError.self) { try vm.watch(address: 0x3002, length: 4, on: .readWrite) }
        try vm.setBreakpoint(at: 0x7c10)
        for i in 0..<3 { try vm.watch(address: 0x4000 + UInt64(i) * 8, length: 8, on: .readWrite) }
        #expect(throws: VMTestError.self) { try vm.watch(address: 0x5000, length: 1, on: .write) }
    }
}
