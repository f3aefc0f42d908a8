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

/// What a machine is made of, as plain values: enough to build the same
/// machine again in another process (a snapshot carries it).
public struct MachineHardware: Codable, Hashable, Sendable {
    /// Guest RAM in bytes.
    public var memorySize: UInt64
    public var vcpuCount: Int
    public var platform: MachineConfiguration.Platform
    /// The CPUID features hidden from the guest, by name (`CPUIDFeature.known`).
    public var hiddenCPUFeatures: [String]
    /// Whether QEMU's debug console answers at port 0xe9 (a restored machine
    /// has it too, writing where its `MachineIO` says, or nowhere).
    public var debugConsole: Bool

    public init(
        memorySize: UInt64, vcpuCount: Int, platform: MachineConfiguration.Platform, hiddenCPUFeatures: [String] = [],
        debugConsole: Bool = false
    ) {
        self.memorySize = memorySize
        self.vcpuCount = vcpuCount
        self.platform = platform
        self.hiddenCPUFeatures = hiddenCPUFeatures
        self.debugConsole = debugConsole
    }

    /// The hidden features as `CPUIDFeature`s; unknown names are an error
    /// (a snapshot from a newer swiftvmm, or a damaged one).
    func resolvedHiddenFeatures() throws(MachineError) -> [CPUIDFeature] {
        var features: [CPUIDFeature] = []
        for name in hiddenCPUFeatures {
            guard let feature = CPUIDFeature.named(name) else { throw .unknownCPUIDFeature(name) }
            features.append(feature)
        }
        return features
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
            debugConsole: debugConsoleOutput != nil)
    }
}
