import ACPI
import Devices
import GuestMemory
import KVM
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// The devices of one machine and the buses they sit on.
///
/// Built the same way for a machine that boots and for one a snapshot is
/// restored into, so that a device's saved state always finds the same
/// device, wired to the same ports and interrupt lines, to go back into.
final class MachineDevices {
    let ports = PortIOBus()
    let mmio = MMIOBus()
    /// COM1 and its sink.
    let serial: Serial16550
    let serialOutput: any SerialOutput
    /// COM2 (IRQ 3 on the PC platform) and its sink (discarding when none was given).
    let serial2: Serial16550
    /// COM2's and the debug console's sinks, flushed whenever COM1's is.
    let otherOutputs: [any SerialOutput]
    let postCodes = PostCodePort()
    /// The PC platform's devices; `nil` on the minimal platform.
    let pc: PCDevices?
    /// The virtio devices and their I/O thread; `nil` when there are none.
    let virtio: VirtioBus?

    /// The devices only a PC has.
    struct PCDevices {
        let i8042: I8042Controller
        let rtc: CMOSRTC
        let pciConfig: PCIConfigSpaceStub
        let acpiSleep: ACPISleepControl
        let acpiReset: ACPIResetRegister
        /// The PM1a event and control blocks (S3 and S5 for code that reads them).
        let acpiPM1: ACPIPM1Registers
        /// QEMU's pc-testdev, with `--test-devices`.
        let testDevice: PCTestDevice?
    }

    /// Creates the devices and registers them on the buses. `vm` gives the
    /// PC platform's interrupt lines.
    init(io: MachineIO, hardware: MachineHardware, vm: borrowing KVMVirtualMachine, memory: GuestMemoryView) throws(MachineError) {
        let pc = hardware.platform == .pc
        let memorySize = hardware.memorySize
        serialOutput = io.serialOutput ?? FileSerialOutput.standardOutput()
        serial = Serial16550(output: serialOutput, interrupt: pc ? vm.interruptLine(PortMap.com1.irq) : nil)
        let serial2Output = io.serial2Output ?? DiscardingSerialOutput()
        serial2 = Serial16550(output: serial2Output, interrupt: pc ? vm.interruptLine(PortMap.com2.irq) : nil)
        let debugConsoleOutput = hardware.debugConsole ? io.debugConsoleOutput ?? DiscardingSerialOutput() : nil
        otherOutputs = [serial2Output] + (debugConsoleOutput.map { [$0] } ?? [])
        if pc {
            let acpi = PlatformSetup.acpiConfiguration(vcpuCount: hardware.vcpuCount)
            self.pc = PCDevices(
                i8042: I8042Controller(
                    keyboardInterrupt: vm.interruptLine(PortMap.i8042KeyboardIRQ), auxInterrupt: vm.interruptLine(PortMap.i8042AuxIRQ)),
                rtc: CMOSRTC(
                    memorySize: memorySize, lowMemoryLimit: PlatformSetup.lowRAMLimit,
                    subsecondClock: { Int(HostRealTime.now().nanoseconds) }
                ) {
                    RTCDateTime(secondsSince1970: HostRealTime.now().seconds)
                },
                pciConfig: PCIConfigSpaceStub(),
                acpiSleep: ACPISleepControl(softOffSleepType: acpi.s5SleepType, suspendSleepType: acpi.suspendToRAM?.sleepType),
                acpiReset: ACPIResetRegister(resetValue: acpi.resetValue),
                acpiPM1: ACPIPM1Registers(
                    suspendSleepType: acpi.suspendToRAM?.sleepType ?? PlatformSetup.s3SleepType, softOffSleepType: acpi.s5SleepType),
                testDevice: hardware.testDevices == true
                    ? PCTestDevice(
                        lines: Dictionary(
                            uniqueKeysWithValues: (0..<Int(PCTestDevice.interruptLineCount)).map { ($0, vm.interruptLine(UInt32($0))) }))
                    : nil)
        } else {
            self.pc = nil
        }
        do {
            try ports.register(serial, at: PortMap.com1.base, length: PortMap.com1.length)
            try ports.register(serial2, at: PortMap.com2.base, length: PortMap.com2.length)
            if let debugConsole = debugConsoleOutput {
                try ports.register(
                    DebugConsolePort(output: debugConsole), at: PortMap.debugConsole.base, length: PortMap.debugConsole.length)
            }
            try ports.register(postCodes, at: PortMap.postCode.base, length: PortMap.postCode.length)
            try ports.register(DebugExitPort(), at: PortMap.debugExit.base, length: PortMap.debugExit.length)
            if let devices = self.pc {
                try ports.register(devices.i8042.dataPort, at: PortMap.i8042Data, length: I8042Controller.Port.portCount)
                try ports.register(devices.i8042.statusCommandPort, at: PortMap.i8042StatusCommand, length: I8042Controller.Port.portCount)
                try ports.register(devices.rtc, at: PortMap.cmos.base, length: PortMap.cmos.length)
                try ports.register(devices.pciConfig, at: PortMap.pciConfig.base, length: PortMap.pciConfig.length)
                try ports.register(devices.acpiSleep, at: PortMap.acpiSleep.base, length: PortMap.acpiSleep.length)
                try ports.register(devices.acpiReset, at: PortMap.acpiReset.base, length: PortMap.acpiReset.length)
                try ports.register(devices.acpiPM1, at: PortMap.acpiPM1.base, length: PortMap.acpiPM1.length)
                if let test = devices.testDevice {
                    try ports.register(test.ioPort, at: PCTestDevice.ioPortBase, length: PCTestDevice.ioPortCount)
                    try ports.register(test.interruptLines, at: PCTestDevice.interruptLineBase, length: PCTestDevice.interruptLineCount)
                    try mmio.register(test.memory, at: PCTestDevice.memoryBase, length: PCTestDevice.memorySize)
                }
            }
        } catch { throw .bus(error) }
        if hardware.virtioDevices.isEmpty {
            virtio = nil
        } else {
            guard pc else { throw .virtioNeedsPCPlatform }
            let mmio = self.mmio
            virtio = try VirtioBus(
                hardware.virtioDevices, memory: memory, vm: vm,
                mmio: { (device, base, length) throws(MachineError) in
                    do throws(BusError) { try mmio.register(device, at: base, length: length) } catch { throw .bus(error) }
                }, logger: io.logger)
        }
    }

    /// The PC's fw_cfg device, plugged in once its contents are known (they depend on the guest).
    private(set) var firmwareConfig: FirmwareConfig?

    /// Plugs in the PC's fw_cfg device.
    func plug(_ firmwareConfig: FirmwareConfig) throws(MachineError) {
        do { try ports.register(firmwareConfig, at: PortMap.firmwareConfig.base, length: PortMap.firmwareConfig.length) } catch {
            throw .bus(error)
        }
        self.firmwareConfig = firmwareConfig
    }

    /// Flushes every sink.
    func flushOutputs() {
        serialOutput.flush()
        for output in otherOutputs { output.flush() }
    }
}

extension MachineDevices {
    /// Every device's state. The caller holds the bus lock.
    var states: MachineSnapshot.DeviceStates {
        MachineSnapshot.DeviceStates(
            com1: serial.state, com2: serial2.state, postCode: postCodes.state, i8042: pc?.i8042.state, rtc: pc?.rtc.state,
            pciConfig: pc?.pciConfig.state, acpiSleep: pc?.acpiSleep.state, acpiPM1: pc?.acpiPM1.state,
            firmwareConfig: firmwareConfig?.state,
            virtio: virtio.map { $0.transports.map(\.state) },
            virtioDevices: virtio.map { $0.transports.map { VirtioDeviceState(of: $0.device) } })
    }

    /// Puts every device's state back; each device validates its own. The
    /// caller holds the bus lock and has checked that the states fit this
    /// platform (`MachineSnapshot.validate()`).
    func restore(_ states: MachineSnapshot.DeviceStates) throws(DeviceStateError) {
        try serial.restore(states.com1)
        try serial2.restore(states.com2)
        try postCodes.restore(states.postCode)
        if let pc {
            if let state = states.i8042 { try pc.i8042.restore(state) }
            if let state = states.rtc { try pc.rtc.restore(state) }
            if let state = states.pciConfig { try pc.pciConfig.restore(state) }
            if let state = states.acpiSleep { try pc.acpiSleep.restore(state) }
            if let state = states.acpiPM1 { try pc.acpiPM1.restore(state) }
        }
        if let firmwareConfig, let state = states.firmwareConfig { try firmwareConfig.restore(state) }
        if let virtio, let saved = states.virtio {
            // A device's own state first: re-activating the transport starts it.
            for (transport, state) in zip(virtio.transports, states.virtioDevices ?? []) { try state.restore(into: transport.device) }
            for (transport, state) in zip(virtio.transports, saved) { try transport.restore(state) }
        }
    }
}

/// The host's UTC time (`CLOCK_REALTIME`), seconds and nanoseconds read
/// together, so that the RTC's seconds and its update cycle agree (`time()`
/// can lag the precise clock by a tick).
enum HostRealTime {
    static func now() -> (seconds: Int64, nanoseconds: Int64) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return (Int64(now.tv_sec), Int64(now.tv_nsec))
    }
}
