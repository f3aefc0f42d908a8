import Devices
import Logging

/// A machine's run-time wiring: where its output goes and what it logs to.
///
/// Kept apart from what describes the machine (`MachineHardware`, the guest),
/// because none of it can be saved: a restored machine gets the wiring of the
/// process that restores it.
public struct MachineIO {
    /// Where COM1's output goes; `nil` means standard output.
    public var serialOutput: (any SerialOutput)?
    /// Where COM2's output goes; `nil` discards it (the UART is there either way).
    public var serial2Output: (any SerialOutput)?
    /// Where the debug console (port 0xe9) writes; `nil` means the machine has none.
    public var debugConsoleOutput: (any SerialOutput)?
    public var logger: Logger

    public init(
        serialOutput: (any SerialOutput)? = nil, serial2Output: (any SerialOutput)? = nil,
        debugConsoleOutput: (any SerialOutput)? = nil, logger: Logger = Logger(label: "swiftvmm")
    ) {
        self.serialOutput = serialOutput
        self.serial2Output = serial2Output
        self.debugConsoleOutput = debugConsoleOutput
        self.logger = logger
    }
}

extension MachineConfiguration {
    /// The wiring part of this configuration.
    public var io: MachineIO {
        MachineIO(serialOutput: serialOutput, serial2Output: serial2Output, debugConsoleOutput: debugConsoleOutput, logger: logger)
    }

    /// The hardware this configuration describes.
    public var hardware: MachineHardware {
        MachineHardware(
            memorySize: memorySize, vcpuCount: vcpuCount, platform: resolvedPlatform, hiddenCPUFeatures: hiddenCPUFeatures.map(\.name),
            debugConsole: debugConsoleOutput != nil, virtioDevices: virtioDevices, testDevices: testDevices,
            bootTimer: bootTimer, memoryBacking: memoryBacking)
    }
}
