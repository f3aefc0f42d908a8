// The configuration vocabulary is part of this library's API:
// `MachineConfiguration.hiddenCPUFeatures` holds `CPUIDFeature`s and
// `MachineConfiguration(spec:source:logger:)` takes a `MachineSpec`. Both,
// and `CommandLineValue`, lived in this module before SwiftVMMConfig was split
// out, so `import SwiftVMM` keeps bringing them.
@_exported import SwiftVMMConfig
