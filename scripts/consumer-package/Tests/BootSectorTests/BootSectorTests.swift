import Testing
import VMMTesting  // the only import: VMExit, Registers, FirmwareImage and the rest come with it

@Test func bootSectorGreets() throws {
    let vm = try TestVM(TestGuest.realBoot)  // Guests/realmode/boot.S, entered at 0:0x7c00
    try vm.run(untilOutputContains: "Hello", timeout: .seconds(2))
    try vm.awaitSync(1)
    try vm.answer(0x2a)
    #expect(try vm.runToCompletion() == .debugExit(status: 0))
    #expect(vm.serialText == "Hello from real mode!\n")
}

@Test func theBootSectorsSymbolsAndTypesAreThere() throws {
    let greeted: UInt64 = try #require(TestGuest.realBoot.symbol("greeted"))
    let image: FirmwareImage = TestGuest.realBoot
    #expect(image.mode == CPUMode.real && (0x7c00..<0x7e00).contains(greeted))
    let vm = try TestVM(image)
    try vm.setBreakpoint(at: greeted)
    try vm.awaitSync(1)
    try vm.answer(0x2b)
    let exit: VMExit = try vm.run(until: .debugTrap(at: greeted))
    guard case .debug(let info) = exit else { return }
    let details: DebugExitInfo = info
    let registers: Registers = try vm.registers()
    #expect(details.pc == greeted && registers.rcx & 0xffff == 0x2b)
    let output: SerialBufferOutput = vm.serialOutput
    #expect(output.text.hasPrefix("Hello"))
    let data = IOData(value: 0, size: 1)
    #expect(data.count == 1)
    try vm.removeBreakpoint(at: greeted)
    let error = try #require(throws: VMTestError.self) { try vm.runToCompletion() }
    #expect(error.description.contains("realmode/boot.S"), "the file of the failed check: \(error)")
    #expect(error.description.contains("the test's answer"), "\(error)")
}

@Test func aCGuestUsesTheHypercallHeader() throws {
    let vm = try TestVM(TestGuest.longSum)
    vm.onHypercall { call in
        guard case .request(_, let arguments) = call else { return nil }
        return arguments[0] == 0 ? 40 : 2
    }
    #expect(try vm.runToCompletion() == .debugExit(status: 0))
    #expect(vm.hypercalls.count == 3)
}
