import FoundationEssentials
import GuestMemory
import Testing
import VMCore

@testable import KVM

/// A real-mode VM over 64 KiB of RAM holding `image` from address 0, its vCPU
/// entered at 0x1000 with flat segments, as a machine builder would make it
/// (CPUID first). Memory outlives the VM within this scope.
func withStateGuest(
    image: [UInt8], irqchip: Bool, logDirtyPages: Bool = false, manualDirtyLogProtect: Bool = false,
    _ body: (borrowing KVMSystem, borrowing KVMVirtualMachine, inout KVMVCPU, borrowing GuestMemory) throws -> Void
) throws {
    let kvm = try openKVM()
    let memory = try GuestMemory(size: 0x10000)
    try memory.write(image, at: GuestAddress(0))
    let vm = try kvm.createVM()
    if manualDirtyLogProtect { try vm.enableManualDirtyLogProtect() }
    for (slot, mapping) in memory.hostMappings.enumerated() {
        try vm.setUserMemoryRegion(
            slot: UInt32(slot), guestAddress: mapping.guestBase, size: mapping.size, hostAddress: mapping.hostAddress,
            logDirtyPages: logDirtyPages)
    }
    if irqchip {
        try vm.createIRQChip()
        try vm.createPIT()
    }
    var vcpu = try vm.createVCPU(id: 0)
    try vcpu.setCPUID(kvm.supportedCPUID())
    var special = try vcpu.specialRegisters()
    for keyPath in [\SpecialRegisters.cs, \.ds, \.es, \.ss] {
        special[keyPath: keyPath].base = 0
        special[keyPath: keyPath].selector = 0
    }
    try vcpu.setSpecialRegisters(special)
    var registers = Registers()
    registers.rip = 0x1000
    registers.rsp = 0x1000
    try vcpu.setRegisters(registers)
    try body(kvm, vm, &vcpu, memory)
}

/// `code` at 0x1000 in an otherwise zeroed 64 KiB image.
func image(code: [UInt8]) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 0x10000)
    bytes.replaceSubrange(0x1000..<(0x1000 + code.count), with: code)
    return bytes
}

/// Computes in 32-bit registers and memory, stops at `out %al,$0x10`, computes
/// more from what it stored, reports it with `out %eax,$0x12` and halts.
let midpointGuest: [UInt8] = [
    0x66, 0xb8, 0x78, 0x56, 0x34, 0x12,  // mov $0x12345678,%eax
    0x66, 0xbb, 0x01, 0x00, 0x00, 0x00,  // mov $1,%ebx
    0x66, 0x01, 0xc3,  // add %eax,%ebx
    0x66, 0x89, 0x1e, 0x00, 0x20,  // mov %ebx,(0x2000)
    0xb9, 0x05, 0x00,  // mov $5,%cx
    0x66, 0xd1, 0xc3,  // 1: rol $1,%ebx
    0xe2, 0xfb,  // loop 1b
    0xe6, 0x10,  // out %al,$0x10         <- the snapshot is taken here
    0x66, 0x40,  // inc %eax
    0x66, 0x8b, 0x0e, 0x00, 0x20,  // mov (0x2000),%ecx
    0x66, 0x01, 0xc1,  // add %eax,%ecx
    0x66, 0x89, 0x0e, 0x04, 0x20,  // mov %ecx,(0x2004)
    0x66, 0x31, 0xd9,  // xor %ebx,%ecx
    0x66, 0x89, 0xc8,  // mov %ecx,%eax
    0x66, 0xe7, 0x12,  // out %eax,$0x12
    0xe6, 0x14,  // out %al,$0x14 (with an in-kernel LAPIC, hlt would wait in KVM for an interrupt)
    0xf4,  // hlt
]

/// The state KVM reports again after a restore, minus what moves on its own (the TSC).
func comparable(_ state: VCPUState) -> VCPUState {
    var state = state
    state.msrs = state.msrs.filter { $0.index != MSR.tsc }
    return state
}

@Suite(.serialized) struct VCPUStateTests {
    /// XMM3 in the legacy region of the XSAVE area (XMM0 is at byte 160).
    static let xmm3InXSAVE = (160 + 3 * 16)..<(160 + 4 * 16)

    @Test(arguments: [false, true])
    func aVCPURestoredInAnotherVMFinishesLikeTheOriginal(irqchip: Bool) throws {
        var saved: VCPUState?
        var savedVM: VMState?
        var savedMemory: [UInt8] = []
        var msrIndices: [UInt32] = []
        var original: (exits: [VMExit], registers: Registers, memory: [UInt8])?
        try withStateGuest(image: image(code: midpointGuest), irqchip: irqchip) { kvm, vm, vcpu, memory in
            // State the guest does not touch, to see that it travels too.
            // XMM3 goes in through XSAVE: KVM_SET_FPU writes the legacy area
            // without marking SSE in use, so XSAVE (and the guest) would see 0.
            var xsave = try vcpu.xsave()
            xsave.replaceSubrange(Self.xmm3InXSAVE, with: 0..<16)
            xsave[512] |= 0b10  // XSTATE_BV: SSE state present
            try vcpu.setXSAVE(xsave)
            try vcpu.setDebugRegisters(DebugRegisters(addresses: [0x1234, 0, 0, 0x5678], dr6: 0xffff_0ff0, dr7: 0x400))
            try vcpu.setMSRs([(MSR.sysenterCS, 0x10), (MSR.kernelGSBase, 0xffff_8000_0000_1000)])
            let probe = try vcpu.migratableMSRs(from: kvm.migratableMSRIndices())
            msrIndices = probe.accepted
            #expect(probe.accepted.contains(MSR.sysenterCS))

            #expect(try vcpu.run() == .ioOut(port: 0x10, size: 1, count: 1, data: IOData(value: 0x78, size: 1)))
            #expect(try vcpu.completePendingIO() == nil)
            #expect(try vcpu.registers().rip == 0x101e, "the out is complete: RIP is past it")
            saved = try vcpu.saveState(msrIndices: msrIndices)
            savedVM = try vm.saveState()
            savedMemory = try memory.read(count: 0x10000, at: GuestAddress(0))

            let exits = [try vcpu.run(), try vcpu.run()]
            _ = try vcpu.completePendingIO()
            original = (exits, try vcpu.registers(), try memory.read(count: 0x10000, at: GuestAddress(0)))
        }
        let state = try #require(saved)
        let vmState = try #require(savedVM)
        let expected = try #require(original)
        #expect(state.mpState == .runnable)
        #expect((state.lapic != nil) == irqchip)
        #expect((vmState.irqchip != nil) == irqchip)
        #expect((vmState.pit != nil) == irqchip)
        #expect(state.msrs.contains(MSREntry(index: MSR.kernelGSBase, value: 0xffff_8000_0000_1000)))
        #expect(
            expected.exits[0] == .ioOut(port: 0x12, size: 4, count: 1, data: IOData(value: expected.registers.rax & 0xffff_ffff, size: 4)))
        #expect(expected.exits[1] == .ioOut(port: 0x14, size: 1, count: 1, data: IOData(value: expected.registers.rax & 0xff, size: 1)))

        try withStateGuest(image: savedMemory, irqchip: irqchip) { _, vm, vcpu, memory in
            try vm.restoreState(vmState)
            try vcpu.restoreState(state)
            #expect(comparable(try vcpu.saveState(msrIndices: msrIndices)) == comparable(state))
            #expect(try vcpu.fpu().xmm[3] == Array(0..<16))
            #expect(try Array(vcpu.xsave()[Self.xmm3InXSAVE]) == Array(0..<16))

            let exits = [try vcpu.run(), try vcpu.run()]
            _ = try vcpu.completePendingIO()
            #expect(exits == expected.exits)
            #expect(try vcpu.registers() == expected.registers)
            #expect(try memory.read(count: 0x10000, at: GuestAddress(0)) == expected.memory)
        }
    }

    @Test func anAnsweredInLandsInTheSavedRegistersOnlyOnceCompleted() throws {
        // in $0x20,%al; out %al,$0x21; hlt
        try withStateGuest(image: image(code: [0xe4, 0x20, 0xe6, 0x21, 0xf4]), irqchip: false) { _, _, vcpu, _ in
            #expect(try vcpu.run() == .ioIn(port: 0x20, size: 1, count: 1))
            vcpu.completeRead(IOData(value: 0x5a, size: 1))
            let pending = try vcpu.saveState(msrIndices: [])
            #expect(pending.registers.rip == 0x1000, "KVM finishes the in on the next KVM_RUN")
            #expect(pending.registers.rax & 0xff == 0)
            #expect(try vcpu.completePendingIO() == nil)
            let completed = try vcpu.saveState(msrIndices: [])
            #expect(completed.registers.rip == 0x1002)
            #expect(completed.registers.rax & 0xff == 0x5a)
            #expect(try vcpu.run() == .ioOut(port: 0x21, size: 1, count: 1, data: IOData(value: 0x5a, size: 1)))
        }
    }

    @Test func vcpuStateSurvivesJSON() throws {
        try withStateGuest(image: image(code: midpointGuest), irqchip: true) { kvm, vm, vcpu, _ in
            let msrs = try vcpu.migratableMSRs(from: kvm.migratableMSRIndices()).accepted
            _ = try vcpu.run()
            _ = try vcpu.completePendingIO()
            let state = try vcpu.saveState(msrIndices: msrs)
            let decoded = try JSONDecoder().decode(VCPUState.self, from: JSONEncoder().encode(state))
            #expect(decoded == state)
            let vmState = try vm.saveState()
            #expect(try JSONDecoder().decode(VMState.self, from: JSONEncoder().encode(vmState)) == vmState)
        }
    }

    @Test func anUnknownMPStateDoesNotDecode() throws {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(MPState.self, from: Data("99".utf8)) }
        for state in MPState.allCases { #expect(MPState.headerValues[state] == Int32(state.rawValue)) }
    }

    @Test func mpStateIsTheEnum() throws {
        try withStateGuest(image: image(code: [0xf4]), irqchip: true) { _, _, vcpu, _ in
            #expect(try vcpu.mpState() == .runnable)
            try vcpu.setMPState(.uninitialized)
            #expect(try vcpu.mpState() == .uninitialized)
        }
    }

    @Test func malformedStateThrowsBeforeTouchingTheVCPU() throws {
        try withStateGuest(image: image(code: [0xf4]), irqchip: true) { kvm, _, vcpu, _ in
            let good = try vcpu.saveState(msrIndices: [MSR.sysenterCS])
            let before = try vcpu.registers()
            var moved = good
            moved.registers.rax = 0xdead

            var state = moved
            state.lapic = Array(repeating: 0, count: 1000)
            #expect(throws: KVMError.stateSizeMismatch(field: "LAPIC register page", expected: 1024, actual: 1000, operation: .setLAPIC)) {
                try vcpu.restoreState(state)
            }
            state = moved
            guard case .xsave(let bytes) = good.floatingPoint else {
                Issue.record("this host has XSAVE")
                return
            }
            state.floatingPoint = .xsave(Array(bytes.prefix(512)))
            #expect(throws: KVMError.stateSizeMismatch(field: "XSAVE area", expected: bytes.count, actual: 512, operation: .setXSAVE)) {
                try vcpu.restoreState(state)
            }
            state = moved
            state.xcrs = Array(repeating: XCR(index: 0, value: 3), count: 17)
            #expect(throws: KVMError.stateSizeMismatch(field: "XCRs", expected: 16, actual: 17, operation: .setXCRs)) {
                try vcpu.restoreState(state)
            }
            state = moved
            state.specialRegisters.interruptBitmap = [0, 0, 0]
            #expect(
                throws: KVMError.stateSizeMismatch(field: "interrupt bitmap", expected: 4, actual: 3, operation: .setSpecialRegisters)
            ) {
                try vcpu.restoreState(state)
            }
            state = moved
            state.debugRegisters.addresses = []
            #expect(throws: KVMError.stateSizeMismatch(field: "DR0-DR3", expected: 4, actual: 0, operation: .setDebugRegisters)) {
                try vcpu.restoreState(state)
            }
            #expect(try vcpu.registers() == before, "nothing was restored")
            #expect(throws: KVMError.stateSizeMismatch(field: "LAPIC register page", expected: 1024, actual: 4096, operation: .setLAPIC)) {
                try vcpu.setLAPICRegisters(Array(repeating: 0, count: 4096))
            }
            state = moved
            state.msrs.append(MSREntry(index: 0xdead_0000, value: 1))
            #expect(throws: KVMError.msrsRejected(index: 0xdead_0000, operation: .setMSRs)) { try vcpu.restoreState(state) }
        }
    }

    @Test func stateFromAVMWithAnIRQChipDoesNotFitOneWithout() throws {
        var withChip: VCPUState?
        try withStateGuest(image: image(code: [0xf4]), irqchip: true) { _, _, vcpu, _ in
            withChip = try vcpu.saveState(msrIndices: [])
        }
        let state = try #require(withChip)
        try withStateGuest(image: image(code: [0xf4]), irqchip: false) { _, _, vcpu, _ in
            let lapic = try vcpu.lapicIfPresent()
            #expect(lapic == nil)
            let error = #expect(throws: KVMError.self) { try vcpu.restoreState(state) }
            #expect(error?.operation == .setLAPIC)
        }
    }
}

@Suite(.serialized) struct VMStateTests {
    @Test func irqchipPITAndClockRoundTrip() throws {
        try withStateGuest(image: image(code: [0xf4]), irqchip: true) { _, vm, _, _ in
            var state = try vm.saveState()
            var irqchip = try #require(state.irqchip)
            #expect(irqchip.ioapic.redirectionTable.count == 24)
            #expect(irqchip.ioapic.baseAddress == 0xfec0_0000)
            irqchip.masterPIC.imr = 0xfb
            irqchip.slavePIC.imr = 0x7f
            irqchip.ioapic.id = 3
            irqchip.ioapic.redirectionTable[4] = 0x0001_0000 | 0x34  // masked, vector 0x34
            state.irqchip = irqchip
            try vm.restoreState(state)

            let readBack = try vm.saveState()
            #expect(readBack.irqchip == irqchip)
            // KVM restarts each PIT channel when it is loaded, so the load time is its own.
            let withoutLoadTimes: (PITState?) -> [PITState.Channel]? = { pit in
                pit?.channels.map { channel in
                    var channel = channel
                    channel.countLoadTime = 0
                    return channel
                }
            }
            #expect(withoutLoadTimes(readBack.pit) == withoutLoadTimes(state.pit))
            #expect(readBack.pit?.flags == state.pit?.flags)
            #expect(readBack.clock.clock >= state.clock.clock)
            #expect(readBack.clock.clock - state.clock.clock < 1_000_000_000, "the clock resumes where it was, not at 0")
        }
    }

    @Test func aVMWithoutChipsHasNone() throws {
        try withStateGuest(image: image(code: [0xf4]), irqchip: false) { _, vm, _, _ in
            let state = try vm.saveState()
            #expect(state.irqchip == nil)
            #expect(state.pit == nil)
            try vm.restoreState(state)
        }
    }

    @Test func malformedChipStateThrows() throws {
        try withStateGuest(image: image(code: [0xf4]), irqchip: true) { _, vm, _, _ in
            var state = try vm.saveState()
            state.irqchip?.ioapic.redirectionTable.removeLast()
            #expect(
                throws: KVMError.stateSizeMismatch(
                    field: "IOAPIC redirection table", expected: 24, actual: 23, operation: .setIRQChip(chip: 2))
            ) { try vm.restoreState(state) }
            state = try vm.saveState()
            state.pit?.channels.append(PITState.Channel())
            #expect(throws: KVMError.stateSizeMismatch(field: "PIT channels", expected: 3, actual: 4, operation: .setPIT)) {
                try vm.restoreState(state)
            }
        }
        try withStateGuest(image: image(code: [0xf4]), irqchip: false) { _, vm, _, _ in
            let state = VMState(
                irqchip: IRQChipState(masterPIC: PICState(), slavePIC: PICState(), ioapic: IOAPICState()), pit: nil,
                clock: ClockState(clock: 0))
            let error = #expect(throws: KVMError.self) { try vm.restoreState(state) }
            #expect(error?.operation == .setIRQChip(chip: 0))
        }
    }
}

@Suite(.serialized) struct HostStateSupportTests {
    @Test func reportWhatThisHostSavesAndRefuses() throws {
        try withStateGuest(image: image(code: [0xf4]), irqchip: true) { kvm, _, vcpu, _ in
            let list = try kvm.msrIndexList()
            #expect(list.contains(MSR.tsc))
            let candidates = try kvm.migratableMSRIndices()
            let probe = try vcpu.migratableMSRs(from: candidates)
            #expect(Set(probe.accepted).isDisjoint(with: probe.refused))
            #expect(probe.accepted.count + probe.refused.count == candidates.count)
            #expect(probe.accepted.contains(MSR.tsc))
            print("KVM_GET_MSR_INDEX_LIST: \(list.count) MSRs; migratable candidates: \(candidates.map { hex($0) })")
            print("refused on this host: \(probe.refused.map { hex($0) })")
            print("XSAVE size: \(vcpu.xsaveSize) (XSAVE2: \(vcpu.usesXSAVE2)), XCRs: \(vcpu.hasXCRs)")
            _ = try vcpu.saveState(msrIndices: probe.accepted)
        }
    }
}
