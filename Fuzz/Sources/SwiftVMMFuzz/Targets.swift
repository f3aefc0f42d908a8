/// Every fuzz target, by the name `scripts/fuzz.sh` and `SWIFTVMM_FUZZ_TARGET`
/// use. Adding one is a file in this folder with its function and one line here;
/// `scripts/fuzz.sh` finds the names in this file and gives each a seed
/// folder `Fuzz/Seeds/<name>` (optional).
let allTargets: [FuzzTarget] = [
    // Parsers of files the user hands the VMM.
    FuzzTarget(name: "bzimage", run: fuzzBzImage),
    FuzzTarget(name: "elf", run: fuzzELF),
    FuzzTarget(name: "pvh", run: fuzzPVH),
    FuzzTarget(name: "multiboot", run: fuzzMultiboot),
    // Guest RAM: layouts from --memory, and every access the loaders and devices make.
    FuzzTarget(name: "guest-memory", run: fuzzGuestMemory),
    // Values typed on the command line.
    FuzzTarget(name: "cmdline-values", run: fuzzCommandLineValues),
    FuzzTarget(name: "module-list", run: fuzzModuleList),
    // A --config file: JSON syntax, strict decoding, the checks, and encoding back.
    FuzzTarget(name: "machine-spec", run: fuzzMachineSpec),
    // Register interfaces the guest drives: one device instance per input.
    FuzzTarget(name: "serial", run: fuzzSerial16550),
    FuzzTarget(name: "i8042", run: fuzzI8042),
    FuzzTarget(name: "cmos-rtc", run: fuzzCMOSRTC),
    FuzzTarget(name: "pci-config", run: fuzzPCIConfigSpace),
    FuzzTarget(name: "acpi-sleep", run: fuzzACPISleepControl),
    FuzzTarget(name: "acpi-pm1", run: fuzzACPIPM1Registers),
    FuzzTarget(name: "acpi-reset", run: fuzzACPIResetRegister),
    FuzzTarget(name: "debug-exit", run: fuzzDebugExitPort),
    FuzzTarget(name: "debug-console", run: fuzzDebugConsolePort),
    FuzzTarget(name: "post-code", run: fuzzPostCodePort),
    FuzzTarget(name: "fw-cfg", run: fuzzFirmwareConfig),
    // Saved device state from a snapshot or migration stream: JSON restored into every device.
    FuzzTarget(name: "device-state", run: fuzzDeviceState),
    // A snapshot's state file: framing, checksum, the machine state's JSON and its consistency.
    FuzzTarget(name: "snapshot-state", run: fuzzSnapshotState),
    // The buses: the PC's whole port space (string I/O included) and MMIO routing.
    FuzzTarget(name: "port-bus", run: fuzzPortBus),
    FuzzTarget(name: "mmio-bus", run: fuzzMMIOBus),
    // virtio: the queue walker on hostile rings, and the MMIO transport's registers.
    FuzzTarget(name: "virtqueue", run: fuzzVirtqueue),
    FuzzTarget(name: "virtio-mmio", run: fuzzVirtioMMIO),
    // What a debugger sends the GDB stub: framing, the parser and the protocol engine.
    FuzzTarget(name: "gdb-packet", run: fuzzGDBPacket),
    // What a live migration's destination reads from its socket: framing, checksums, page batches, state.
    FuzzTarget(name: "migration-stream", run: fuzzMigrationStream),
]
