import GuestMemory
import Testing
import VMCore

@testable import KVM

/// A VM with `code` at 0x1000 in 64 KiB of RAM, entered in real mode there.
/// Memory and VM live together in one scope, memory outliving the VM's use.
func withRealModeGuest(_ code: [UInt8], _ body: (inout KVMVCPU) throws -> Void) throws {
    let kvm = try openKVM()
    let memory = try GuestMemory(size: 0x10000)
    try memory.write(code, at: GuestAddress(0x1000))
    let vm = try kvm.createVM()
    for (slot, mapping) in memory.hostMappings.enumerated() {
        try vm.setUserMemoryRegion(
            slot: UInt32(slot), guestAddress: mapping.guestBase, size: mapping.size, hostAddress: mapping.hostAddress)
    }
    var vcpu = try vm.createVCPU(id: 0)
    var special = try vcpu.specialRegisters()
    special.cs.base = 0
    special.cs.selector = 0
    special.ds.base = 0
    special.ds.selector = 0
    try vcpu.setSpecialRegisters(special)
    var registers = Registers()
    registers.rip = 0x1000
    registers.rsp = 0x1000
    try vcpu.setRegisters(registers)
    try body(&vcpu)
}

@Suite(.serialized) struct TinyGuestTests {
    @Test func portWritesAndHaltAreDecoded() throws {
        // mov $0x42,%al; out %al,$0x10; mov $0x1234,%ax; out %ax,$0x12; hlt
        try withRealModeGuest([0xb0, 0x42, 0xe6, 0x10, 0xb8, 0x34, 0x12, 0xe7, 0x12, 0xf4]) { vcpu in
            let value1 = try vcpu.run()
            #expect(value1 == .ioOut(port: 0x10, size: 1, count: 1, data: IOData(value: 0x42, size: 1)))
            let value2 = try vcpu.run()
            #expect(value2 == .ioOut(port: 0x12, size: 2, count: 1, data: IOData(value: 0x1234, size: 2)))
            let value3 = try vcpu.run()
            #expect(value3 == .halt)
            let value4 = try vcpu.registers().rip
            #expect(value4 == 0x100a)
        }
    }

    @Test func portReadsAreAnsweredThroughTheRunPage() throws {
        // in $0x20,%al; mov %al,%bl; in (%dx),%ax [dx=0x3f8]; hlt
        try withRealModeGuest([0xe4, 0x20, 0x88, 0xc3, 0xba, 0xf8, 0x03, 0xed, 0xf4]) { vcpu in
            let value5 = try vcpu.run()
            #expect(value5 == .ioIn(port: 0x20, size: 1, count: 1))
            vcpu.completeRead(IOData(value: 0x5a, size: 1))
            let value6 = try vcpu.run()
            #expect(value6 == .ioIn(port: 0x3f8, size: 2, count: 1))
            vcpu.completeRead(IOData(value: 0xbeef, size: 2))
            let value7 = try vcpu.run()
            #expect(value7 == .halt)
            let registers = try vcpu.registers()
            #expect(registers.rbx & 0xff == 0x5a)
            #expect(registers.rax & 0xffff == 0xbeef)
        }
    }

    @Test func stringOutputCarriesEveryByte() throws {
        // mov $0x1100,%si; mov $5,%cx; mov $0x3f8,%dx; rep outsb; hlt
        let code: [UInt8] = [0xbe, 0x00, 0x11, 0xb9, 0x05, 0x00, 0xba, 0xf8, 0x03, 0xf3, 0x6e, 0xf4]
        try withRealModeGuest(code + Array(repeating: 0x90, count: 0x100 - code.count) + Array("hello".utf8)) { vcpu in
            var bytes: [UInt8] = []
            var exit = try vcpu.run()
            while case .ioOut(0x3f8, 1, let count, let data) = exit {
                bytes += data.bytes
                #expect(data.count == Int(count))
                exit = try vcpu.run()
            }
            #expect(String(decoding: bytes, as: UTF8.self) == "hello")
            #expect(exit == .halt)
        }
    }

    @Test func accessesBeyondRAMBecomeMMIOExits() throws {
        // mov $0x2000,%ax; mov %ax,%ds; mov (0),%bx  [0x20000: no RAM]; movw $0x77,(2); hlt
        let code: [UInt8] = [0xb8, 0x00, 0x20, 0x8e, 0xd8, 0x8b, 0x1e, 0x00, 0x00, 0xc7, 0x06, 0x02, 0x00, 0x77, 0x00, 0xf4]
        try withRealModeGuest(code) { vcpu in
            let value8 = try vcpu.run()
            #expect(value8 == .mmioRead(address: GuestAddress(0x20000), size: 2))
            vcpu.completeRead(IOData(value: 0xabcd, size: 2))
            let value9 = try vcpu.run()
            #expect(value9 == .mmioWrite(address: GuestAddress(0x20002), data: IOData(value: 0x77, size: 2)))
            let value10 = try vcpu.run()
            #expect(value10 == .halt)
            let value11 = try vcpu.registers().rbx & 0xffff
            #expect(value11 == 0xabcd)
        }
    }

    @Test func registerStateRoundTrips() throws {
        try withRealModeGuest([0xf4]) { vcpu in
            var registers = try vcpu.registers()
            registers.r15 = 0x0123_4567_89ab_cdef
            try vcpu.setRegisters(registers)
            let value12 = try vcpu.registers().r15
            #expect(value12 == 0x0123_4567_89ab_cdef)
            var fpu = try vcpu.fpu()
            fpu.fcw = 0x27f  // 53-bit precision instead of 64
            fpu.xmm[3] = Array(0..<16)
            try vcpu.setFPU(fpu)
            let readBack = try vcpu.fpu()
            // MXCSR is not compared: this host's KVM_GET_FPU always reports 0 for it.
            #expect(readBack.fcw == 0x27f)
            #expect(readBack.xmm[3] == Array(0..<16))
            try vcpu.setMSRs([(MSR.sysenterCS, 0x10)])
            let value13 = try vcpu.msrs([MSR.sysenterCS])
            #expect(value13 == [MSR.sysenterCS: 0x10])
            #expect(throws: KVMError.msrsRejected(index: 0xdead_0000, operation: .setMSRs)) {
                try vcpu.setMSRs([(0xdead_0000, 1)])
            }
        }
    }

    @Test func immediateExitStopsTheNextRun() throws {
        try withRealModeGuest([0xeb, 0xfe]) { vcpu in  // jmp . (spins forever)
            vcpu.kicker.requestExit()
            let value14 = try vcpu.run()
            #expect(value14 == .interrupted)
        }
    }
}
