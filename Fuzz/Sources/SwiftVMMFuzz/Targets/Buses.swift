import Devices
import Logging
import SwiftVMM
import VMCore

/// The PC's port space as `Machine` builds it (without KVM's interrupt
/// lines), driven with the exits KVM can deliver: single and string port I/O
/// of 1, 2 or 4 bytes at any port, and MMIO of 1 to 8 bytes anywhere, all
/// through the `ExitDispatcher` the run loop uses.
func fuzzPortBus(_ bytes: [UInt8]) {
    let ports = PortIOBus()
    let mmio = MMIOBus()
    let i8042 = I8042Controller()
    setUp { try ports.register(Serial16550(output: SerialBufferOutput()), at: PortMap.com1.base, length: PortMap.com1.length) }
    setUp { try ports.register(PostCodePort(), at: PortMap.postCode.base, length: PortMap.postCode.length) }
    setUp { try ports.register(DebugExitPort(), at: PortMap.debugExit.base, length: PortMap.debugExit.length) }
    setUp { try ports.register(i8042.dataPort, at: PortMap.i8042Data, length: I8042Controller.Port.portCount) }
    setUp { try ports.register(i8042.statusCommandPort, at: PortMap.i8042StatusCommand, length: I8042Controller.Port.portCount) }
    let rtc = CMOSRTC(memorySize: 128 << 20) { RTCDateTime(secondsSince1970: 0) }
    setUp { try ports.register(rtc, at: PortMap.cmos.base, length: PortMap.cmos.length) }
    setUp { try ports.register(PCIConfigSpaceStub(), at: PortMap.pciConfig.base, length: PortMap.pciConfig.length) }
    setUp { try ports.register(ACPISleepControl(), at: PortMap.acpiSleep.base, length: PortMap.acpiSleep.length) }
    setUp { try ports.register(ACPIResetRegister(), at: PortMap.acpiReset.base, length: PortMap.acpiReset.length) }
    let dispatcher = ExitDispatcher(ports: ports, mmio: mmio, logger: Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() })

    var input = FuzzInput(bytes)
    var exits = 0
    while !input.isEmpty, exits < 1024 {
        exits += 1
        let opcode: UInt8 = input.next()
        let size = UInt8(portSizes[Int(opcode >> 2 & 3) % portSizes.count])
        // Mostly the ports where devices are, sometimes anywhere.
        let port: UInt16 = opcode & 0x80 != 0 ? input.next() : [0x3f8, 0x60, 0x64, 0x70, 0xcf8, 0x600, 0xf4, 0x80][Int(opcode >> 4 & 7)]
        let low: UInt8 = input.next()
        let portNumber = opcode & 0x80 != 0 ? port : port &+ UInt16(low & 7)
        // rep ins/outs: KVM hands over at most a page of data per exit.
        let count = opcode & 0x40 != 0 ? UInt32(input.next(UInt8.self)) % (4096 / UInt32(size)) + 1 : 1
        let exit: VMExit
        switch opcode & 3 {
        case 0:
            exit = .ioIn(port: portNumber, size: size, count: count)
        case 1:
            // KVM's data is always size * count bytes (RunPage checks it); short input is zero-padded.
            let length = Int(size) * Int(count)
            var string = input.take(upTo: length)
            string += [UInt8](repeating: 0, count: length - string.count)
            let data = count == 1 ? IOData(value: input.next(), size: Int(size)) : IOData(bytes: string)
            exit = .ioOut(port: portNumber, size: size, count: count, data: data)
        case 2:
            exit = .mmioRead(address: GuestAddress(input.next(UInt64.self)), size: UInt8(mmioSizes[Int(opcode >> 2 & 3)]))
        default:
            let mmioSize = mmioSizes[Int(opcode >> 2 & 3)]
            exit = .mmioWrite(address: GuestAddress(input.next(UInt64.self)), data: IOData(value: input.next(), size: mmioSize))
        }
        _ = dispatcher.handle(exit)
    }
}

/// MMIO routing: devices registered and unregistered at arbitrary ranges
/// (overlaps must be refused, not trap), and accesses of 1 to 8 bytes
/// anywhere in the 64-bit space, including across a device's end and the top
/// of the address space.
func fuzzMMIOBus(_ bytes: [UInt8]) {
    let bus = MMIOBus()
    var input = FuzzInput(bytes)
    var operations = 0
    while !input.isEmpty, operations < 1024 {
        operations += 1
        let opcode: UInt8 = input.next()
        let size = mmioSizes[Int(opcode >> 2 & 3)]
        let address = GuestAddress(input.next(UInt64.self))
        switch opcode & 3 {
        case 0: _ = bus.read(address: address, size: size)
        case 1: _ = bus.write(address: address, size: size, value: input.next())
        case 2: try? bus.register(RegisterFile(), at: address, length: input.next())
        default: _ = bus.unregister(overlapping: address, length: input.next())
        }
    }
}

/// An MMIO device that remembers what was written at each offset, so that
/// reads depend on earlier writes the way a real register block's do.
final class RegisterFile: MMIODevice {
    private var registers: [UInt64: UInt64] = [:]
    func read(offset: UInt64, size: Int) -> UInt64 { registers[offset, default: 0] }
    func write(offset: UInt64, size: Int, value: UInt64) -> DeviceRequest? {
        registers[offset] = value
        return nil
    }
}
