import Devices
import Testing
import VMCore

@Suite struct PCIConfigSpaceStubTests {
    private func rig() throws -> (PortIOBus, PCIConfigSpaceStub) {
        let bus = PortIOBus()
        let stub = PCIConfigSpaceStub()
        try bus.register(stub, at: 0xcf8, length: PCIConfigSpaceStub.portCount)
        return (bus, stub)
    }

    @Test func linuxTypeOneCheckReadsTheAddressBack() throws {
        // arch/x86/pci/direct.c, pci_check_type1.
        let (bus, stub) = try rig()
        #expect(bus.write(port: 0xcfb, size: 1, value: 0x01) == BusWriteResult(request: nil, unclaimed: .no))
        let saved = bus.read(port: 0xcf8, size: 4).value
        #expect(saved == 0)
        #expect(bus.write(port: 0xcf8, size: 4, value: 0x8000_0000).request == nil)
        #expect(bus.read(port: 0xcf8, size: 4) == BusReadResult(value: 0x8000_0000, unclaimed: .no))
        _ = bus.write(port: 0xcf8, size: 4, value: saved)
        #expect(stub.configAddress == 0)
    }

    @Test func addressReadsBackExactlyAsWrittenReservedBitsIncluded() throws {
        let (bus, stub) = try rig()
        for address: UInt64 in [0xffff_ffff, 0x8000_f8fc, 0x7f00_0003, 0] {
            _ = bus.write(port: 0xcf8, size: 4, value: address)
            #expect(bus.read(port: 0xcf8, size: 4).value == address)
            #expect(stub.configAddress == UInt32(address))
        }
    }

    @Test(arguments: [UInt16(0xcfc), 0xcfd, 0xcfe, 0xcff])
    func configDataReadsAllOnesForEveryFunction(port: UInt16) throws {
        let (bus, _) = try rig()
        // Bus 0, device 0, function 0, vendor ID: the first thing every probe reads.
        _ = bus.write(port: 0xcf8, size: 4, value: UInt64(PCIConfigSpaceStub.enableBit))
        for size in [1, 2, 4] {
            #expect(bus.read(port: port, size: size).value == (1 << UInt64(size * 8)) - 1)
        }
        #expect(bus.write(port: port, size: 4, value: 0).request == nil)
        #expect(bus.read(port: 0xcfc, size: 4).value == 0xffff_ffff)
    }

    @Test func narrowAccessesToTheAddressPortsMissIt() throws {
        let (bus, stub) = try rig()
        _ = bus.write(port: 0xcf8, size: 4, value: 0x8000_0810)
        // Byte and word accesses go to the ISA bus, as in Linux's type-2 probe.
        for port: UInt16 in 0xcf8...0xcfb {
            #expect(bus.write(port: port, size: 1, value: 0).request == nil)
            #expect(bus.read(port: port, size: 1).value == 0xff)
        }
        _ = bus.write(port: 0xcfa, size: 2, value: 0)
        #expect(bus.read(port: 0xcf8, size: 2).value == 0xffff)
        #expect(bus.read(port: 0xcf9, size: 4).value == 0xffff_ffff)
        #expect(stub.configAddress == 0x8000_0810)
    }

    @Test func noAccessTrapsOrAsksAnything() {
        #expect(sweepEveryAccess(PCIConfigSpaceStub(), length: PCIConfigSpaceStub.portCount).isEmpty)
    }
}
