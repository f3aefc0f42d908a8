import Devices
import VMCore

// One function per device: a fresh instance per input, driven by `drive`.
// A new device is one more function here (or in its own file) and one line
// in Targets.swift.

func fuzzSerial16550(_ bytes: [UInt8]) {
    let output = SerialBufferOutput()
    let serial = Serial16550(output: output)
    // Host event: the console queues up to 32 bytes of input (the FIFO holds 16).
    drive(serial, ports: 8, bytes) { input in _ = serial.enqueueInput(input.take(upTo: Int(input.next(UInt8.self) % 32))) }
}

func fuzzI8042(_ bytes: [UInt8]) {
    let controller = I8042Controller()
    // Offsets 0 and 4 are the data and status/command ports, as on a PC (0x60, 0x64).
    let ports = PortIOBus()
    setUp { try ports.register(controller.dataPort, at: 0, length: I8042Controller.Port.portCount) }
    setUp { try ports.register(controller.statusCommandPort, at: 4, length: I8042Controller.Port.portCount) }
    drive(BusAsDevice(ports), ports: 5, bytes)
}

func fuzzCMOSRTC(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    // The memory size is the machine's: any 64-bit value must be stored without trapping.
    let memorySize: UInt64 = input.next()
    var seconds: Int64 = input.next()
    let rtc = CMOSRTC(memorySize: memorySize) { RTCDateTime(secondsSince1970: seconds) }
    // Host events: time moves on by an arbitrary amount (wrapping, as a clock
    // never would); a suspended machine asks when the alarm fires, and it fires.
    drive(rtc, ports: 2, input.take(upTo: .max)) { input in
        seconds &+= input.next(Int64.self)
        if let delay = rtc.secondsUntilAlarm(after: RTCDateTime(secondsSince1970: seconds)) {
            precondition((1...86_400).contains(delay), "alarm \(delay) s away")
            rtc.alarmFired()
        }
    }
}

func fuzzPCIConfigSpace(_ bytes: [UInt8]) { drive(PCIConfigSpaceStub(), ports: 8, bytes) }

func fuzzACPISleepControl(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    drive(ACPISleepControl(softOffSleepType: input.next()), ports: 2, input.take(upTo: .max))
}

func fuzzACPIPM1Registers(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let pm1 = ACPIPM1Registers(suspendSleepType: input.next(), softOffSleepType: input.next())
    // Host event: the machine wakes the guest, by the alarm or not.
    drive(pm1, ports: ACPIPM1Registers.portCount, input.take(upTo: .max)) { input in pm1.wake(byAlarm: input.next(UInt8.self) & 1 != 0) }
}

func fuzzACPIResetRegister(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    drive(ACPIResetRegister(resetValue: input.next()), ports: 1, input.take(upTo: .max))
}

func fuzzDebugExitPort(_ bytes: [UInt8]) { drive(DebugExitPort(), ports: 4, bytes) }

func fuzzDebugConsolePort(_ bytes: [UInt8]) { drive(DebugConsolePort(output: SerialBufferOutput()), ports: 1, bytes) }

func fuzzPostCodePort(_ bytes: [UInt8]) { drive(PostCodePort(), ports: 1, bytes) }

/// A bus seen as one device, so that `drive` can address several devices at
/// their offsets (the i8042's two ports sit four apart).
final class BusAsDevice: PortIODevice {
    let bus: PortIOBus
    init(_ bus: PortIOBus) { self.bus = bus }
    func read(offset: UInt16, size: Int) -> UInt64 { bus.read(port: offset, size: size).value }
    func write(offset: UInt16, size: Int, value: UInt64) -> DeviceRequest? { bus.write(port: offset, size: size, value: value).request }
}

/// fw_cfg: selector writes of any width and key, data reads of any width,
/// past the end of every item; the RAM size, CPU count and command line are
/// the machine's, so they come from the input too.
func fuzzFirmwareConfig(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let commandLine = input.take(upTo: Int(input.next(UInt8.self)))
    let device = FirmwareConfig(
        ramSize: input.next(), cpuCount: input.next(), commandLine: commandLine.isEmpty ? nil : commandLine,
        files: [FirmwareConfig.File(name: "etc/e820", bytes: input.take(upTo: 64))])
    drive(device, ports: FirmwareConfig.portCount, input.take(upTo: .max))
}
