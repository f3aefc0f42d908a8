// What a test written against `TestVM` names — exits (`VMExit`, `IOData`,
// `DebugExitInfo`, `GuestAddress`), registers (`Registers`, `CPUMode`),
// guests (`FirmwareImage`), machines (`Machine`, `MachineConfiguration`,
// `StopReason`), devices (`SerialBufferOutput`, `PortIODevice`) and its
// `Logger` — comes with `import VMMTesting`: the modules they live in are
// not products a package outside swiftvmm can depend on.
@_exported import Devices
@_exported import Firmware
@_exported import GuestMemory
@_exported import SwiftVMM
@_exported import VMCore

@_exported import struct Logging.Logger
