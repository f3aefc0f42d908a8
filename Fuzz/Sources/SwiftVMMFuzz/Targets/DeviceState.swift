import Devices
import FoundationEssentials
import VMCore

// Saved device state is untrusted input: it comes from a snapshot file or a
// migration stream. The input is taken as JSON and decoded as each device's
// `State` in turn; whatever decodes is restored into a fresh device, which
// must either refuse it with a DeviceStateError or take it, report exactly
// it back, and then survive every guest access without trapping.

func fuzzDeviceState(_ bytes: [UInt8]) {
    let json = Data(bytes)

    let serial = Serial16550(output: SerialBufferOutput(), interrupt: NullInterruptLine())
    if restore(json, into: serial) {
        exercise(serial, ports: Serial16550.portCount)
        _ = serial.enqueueInput(0...255)
        exercise(serial, ports: Serial16550.portCount)
    }

    let i8042 = I8042Controller(keyboardInterrupt: NullInterruptLine(), auxInterrupt: NullInterruptLine())
    if restore(json, into: i8042) {
        let ports = PortIOBus()
        setUp { try ports.register(i8042.dataPort, at: 0, length: I8042Controller.Port.portCount) }
        setUp { try ports.register(i8042.statusCommandPort, at: 4, length: I8042Controller.Port.portCount) }
        exercise(BusAsDevice(ports), ports: 5)
    }

    // A clock at the far end of the range, so that a restored offset wraps if it can.
    let rtc = CMOSRTC(memorySize: 1 << 30, allowsGuestClockWrites: true) { RTCDateTime(secondsSince1970: .max - 1) }
    if restore(json, into: rtc) {
        for index in 0...UInt8.max {
            _ = rtc.readRegister(index)
            rtc.writeRegister(index, index)
        }
        exercise(rtc, ports: CMOSRTC.portCount)
    }

    let firmwareConfig = FirmwareConfig(
        ramSize: 1 << 30, cpuCount: 2, commandLine: Array("console=ttyS0".utf8),
        files: [FirmwareConfig.File(name: "etc/e820", bytes: Array(repeating: 0xe8, count: 40))])
    if restore(json, into: firmwareConfig) {
        for _ in 0..<64 { _ = firmwareConfig.read(offset: 1, size: 8) }
        exercise(firmwareConfig, ports: FirmwareConfig.portCount)
    }

    let sleep = ACPISleepControl()
    if restore(json, into: sleep) {
        exercise(sleep, ports: ACPISleepControl.portCount)
    }

    let pci = PCIConfigSpaceStub()
    if restore(json, into: pci) {
        exercise(pci, ports: PCIConfigSpaceStub.portCount)
    }

    let postCode = PostCodePort()
    if restore(json, into: postCode) {
        exercise(postCode, ports: 1)
    }
}

/// What every device with saved state offers, so one function can restore them all.
private protocol RestorableDevice: AnyObject {
    associatedtype State: Codable, Equatable
    var state: State { get }
    func restore(_ state: State) throws(DeviceStateError)
}

extension Serial16550: RestorableDevice {}
extension I8042Controller: RestorableDevice {}
extension CMOSRTC: RestorableDevice {}
extension FirmwareConfig: RestorableDevice {}
extension ACPISleepControl: RestorableDevice {}
extension PCIConfigSpaceStub: RestorableDevice {}
extension PostCodePort: RestorableDevice {}

/// Decodes `json` as the device's `State` and restores it. Returns whether
/// the device took it; a device that took a state must report it back unchanged.
private func restore<Device: RestorableDevice>(_ json: Data, into device: Device) -> Bool {
    guard let decoded = try? JSONDecoder().decode(Device.State.self, from: json) else { return false }
    do {
        try device.restore(decoded)
    } catch {
        // Refused, as untrusted input may be; the error must describe itself.
        _ = error.description
        return false
    }
    precondition(device.state == decoded, "\(Device.self) restored a state it does not report back")
    return true
}

/// Every offset (and one past the range) at every port size: a read, a
/// write of all ones, a read, a write of zero.
private func exercise(_ device: any PortIODevice, ports: UInt16) {
    for offset in 0...ports {
        for size in portSizes {
            _ = device.read(offset: offset, size: size)
            _ = device.write(offset: offset, size: size, value: (1 << UInt64(size * 8)) - 1)
            _ = device.read(offset: offset, size: size)
            _ = device.write(offset: offset, size: size, value: 0)
        }
    }
}

/// An interrupt line that goes nowhere: restore must drive it without trapping.
private final class NullInterruptLine: InterruptLine {
    func setLevel(_ high: Bool) {}
}
