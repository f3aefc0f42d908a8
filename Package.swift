// swift-tools-version: 6.1
// The folder tree is the architecture: each target has one job, and the
// dependency arrows below only ever point "down" (see README.md).
import PackageDescription

let package = Package(
    name: "swiftvmm",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "SwiftVMM", targets: ["SwiftVMM"]),
        .library(name: "VMMTesting", targets: ["VMMTesting"]),
        // What a config file holds and the parsers every front end shares (the fuzzers use it too).
        .library(name: "SwiftVMMConfig", targets: ["SwiftVMMConfig"]),
        .executable(name: "swiftvmm", targets: ["swiftvmm"]),
        // Firecracker's API resources and config file, and the HTTP server that serves them.
        .library(name: "FirecrackerAPI", targets: ["FirecrackerAPI"]),
        // The GDB remote serial protocol stub, without KVM (the fuzzers use it too).
        .library(name: "GDBStub", targets: ["GDBStub"]),
        // Lets other packages assemble guests in a target's Guests/ folder at build time.
        .plugin(name: "FirmwarePlugin", targets: ["FirmwarePlugin"]),
        // Live migration's wire format and connections (the fuzzers use it too).
        .library(name: "Migration", targets: ["Migration"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
    ],
    targets: [
        // The only code that includes <linux/kvm.h>: static inline ioctl forwarders.
        .target(name: "CKVM"),
        // Linux headers Swift's Glibc module leaves out (epoll, eventfd, timerfd): declarations only.
        .systemLibrary(name: "CHostSupport"),
        // Host threads, timers and an epoll loop: plain pthreads and Linux fds. No VMM knowledge.
        .target(name: "HostSupport", dependencies: ["CHostSupport"]),
        // Shared vocabulary: addresses, exits, I/O data, device and vCPU protocols.
        .target(name: "VMCore"),
        // Guest RAM: the only owner of raw pointers into guest memory.
        .target(name: "GuestMemory", dependencies: ["VMCore"]),
        // Emulated devices and the buses they sit on. Knows nothing about KVM.
        .target(name: "Devices", dependencies: ["VMCore"]),
        // virtio's queues and MMIO transport: no KVM, like Devices.
        .target(name: "Virtio", dependencies: ["VMCore", "GuestMemory", "HostSupport", "Devices"]),
        // The virtio devices and their host back ends (files, taps, sockets).
        .target(name: "VirtioDevices", dependencies: ["Virtio", "CHostSupport", "VMCore", "GuestMemory", "HostSupport", "Devices"]),
        // The /dev/kvm wrapper: fd owners, the kvm_run page, typed errors.
        .target(
            name: "KVM",
            dependencies: ["CKVM", "VMCore", .product(name: "SystemPackage", package: "swift-system")]),
        // ACPI tables (RSDP, XSDT, FADT, DSDT, MADT) built as bytes. Pure.
        .target(name: "ACPI", dependencies: ["VMCore"]),
        // x86 boot setup: GDT, page tables, CPU entry state, image loaders.
        .target(name: "X86Boot", dependencies: ["VMCore", "GuestMemory"]),
        // Guests from firmware/, assembled from source at build time.
        .executableTarget(name: "FirmwareEmbedder", path: "Sources/FirmwareEmbedder"),
        .plugin(name: "FirmwarePlugin", capability: .buildTool(), dependencies: ["FirmwareEmbedder"]),
        .target(name: "Firmware", dependencies: ["VMCore"], plugins: ["FirmwarePlugin"]),
        // MachineSpec, what a config file holds, and the parsers for sizes,
        // addresses, durations and module lists. Pure: no files, no KVM.
        .target(name: "SwiftVMMConfig", dependencies: ["VMCore"]),
        // The GDB remote serial protocol: packets, commands, the engine and its socket. No KVM.
        .target(name: "GDBStub", dependencies: ["VMCore", "HostSupport"]),
        // Live migration's versioned wire format, its checked reader and its sockets. No KVM.
        .target(name: "Migration", dependencies: ["VMCore"]),
        // The library users depend on: a machine built from the pieces above.
        .target(
            name: "SwiftVMM",
            dependencies: [
                "HostSupport", "VMCore", "GuestMemory", "Devices", "KVM", "X86Boot", "ACPI", "Firmware", "SwiftVMMConfig", "Virtio",
                "VirtioDevices", "GDBStub", "Migration",
                .product(name: "Logging", package: "swift-log"), .product(name: "SystemPackage", package: "swift-system"),
            ]),
        // The host terminal for the command line: raw mode, console input, Ctrl-A commands, process stats.
        .target(name: "VMMConsole", dependencies: ["HostSupport", "VMCore", "Devices"]),
        // Drive a guest exit by exit from tests: scripted devices, breakpoints, hypercalls.
        .target(
            name: "VMMTesting",
            dependencies: ["SwiftVMM", "Firmware", "Devices", "VMCore", "GuestMemory", .product(name: "Logging", package: "swift-log")]),
        // Firecracker's API and config file as values: strict Codable resources, their checks and
        // fault messages, what is allowed in which state, and the mapping onto MachineSpec. Pure.
        .target(name: "FirecrackerAPI", dependencies: ["SwiftVMMConfig"]),
        // HTTP/1.1 on a Unix socket (SwiftNIO): bodies capped, half requests timed out, handlers
        // off the event loop. Knows nothing about VMs.
        .target(
            name: "APIServer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]),
        // A machine driven by Firecracker's API: the resources set so far, the machine, its run.
        .target(
            name: "FirecrackerVMM",
            dependencies: [
                "FirecrackerAPI", "APIServer", "SwiftVMM", "SwiftVMMConfig", "Devices", "VirtioDevices", "Migration",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The command-line VMM: flags in, MachineConfiguration out. No VMM logic.
        .executableTarget(
            name: "swiftvmm",
            dependencies: [
                "SwiftVMM", "SwiftVMMConfig", "VMMConsole", "FirecrackerVMM", "FirecrackerAPI", "APIServer", "GDBStub", "Sandbox",
                "Migration",
                "HostSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Benchmark: swiftvmm's exit path against a bare C KVM_RUN loop (see README).
        .target(name: "CKVMBaseline", dependencies: ["CKVM"]),
        .executableTarget(
            name: "swiftvmm-bench",
            dependencies: [
                "SwiftVMM", "Firmware", "CKVMBaseline", "Devices", "VMMTesting", "VirtioDevices", "VirtioTestDriver", "Virtio",
                "GuestMemory", "VMCore", "Sandbox",
            ]),
        .testTarget(name: "HostSupportTests", dependencies: ["HostSupport", "CHostSupport"]),
        .testTarget(name: "VMCoreTests", dependencies: ["VMCore"]),
        .testTarget(name: "GuestMemoryTests", dependencies: ["GuestMemory"]),
        .testTarget(name: "DevicesTests", dependencies: ["Devices"]),
        // A Swift virtio driver for testing and fuzzing devices without a guest.
        .target(name: "VirtioTestDriver", dependencies: ["Virtio", "GuestMemory", "VMCore"]),
        .testTarget(name: "VirtioTests", dependencies: ["Virtio", "VirtioTestDriver", "GuestMemory", "VMCore", "HostSupport", "Devices"]),
        .testTarget(
            name: "VirtioDevicesTests",
            dependencies: ["VirtioDevices", "VirtioTestDriver", "Virtio", "GuestMemory", "VMCore", "HostSupport"]),
        .testTarget(name: "ACPITests", dependencies: ["ACPI"]),
        .testTarget(name: "X86BootTests", dependencies: ["X86Boot", "GuestMemory", "Firmware"]),
        .testTarget(name: "KVMTests", dependencies: ["KVM", "VMCore", "GuestMemory"]),
        .testTarget(name: "SwiftVMMConfigTests", dependencies: ["SwiftVMMConfig", "VMCore"]),
        .testTarget(
            name: "SwiftVMMTests",
            dependencies: [
                "SwiftVMM", "SwiftVMMConfig", "Firmware", "HostSupport", "KVM", "GuestMemory", "Virtio", "VirtioDevices",
                "VirtioTestDriver",
            ]),
        .testTarget(name: "VMMConsoleTests", dependencies: ["VMMConsole"]),
        .testTarget(
            name: "VMMTestingTests",
            dependencies: [
                "VMMTesting", "Firmware", "SwiftVMM", "Devices", "VMCore", "X86Boot", .product(name: "Logging", package: "swift-log"),
                "Migration",
                "VirtioDevices", "HostSupport",
            ],
            exclude: ["Guests"], plugins: ["FirmwarePlugin"]),
        .testTarget(
            name: "SwiftVMMCLITests", dependencies: ["Firmware", "swiftvmm", "VMMTesting", "SwiftVMM", "Devices", "Sandbox"],
            exclude: ["Guests"]),
        .testTarget(name: "FirecrackerAPITests", dependencies: ["FirecrackerAPI", "SwiftVMMConfig"]),
        .testTarget(
            name: "APIServerTests",
            dependencies: ["APIServer", "FirecrackerAPI", "Firmware", "VMMTesting", "swiftvmm", "SwiftVMM", "Sandbox"]),
        .testTarget(name: "GDBStubTests", dependencies: ["GDBStub", "VMCore"]),
        // seccomp-bpf: installing a filter on a thread, the SIGSYS handler, the system call names.
        .target(name: "CSandbox"),
        // Per-thread seccomp filters, privilege dropping and resource limits for the command line.
        .target(name: "Sandbox", dependencies: ["CSandbox", "HostSupport", "KVM"]),
        .testTarget(name: "SandboxTests", dependencies: ["Sandbox", "HostSupport"]),
        .testTarget(name: "MigrationTests", dependencies: ["Migration", "VMCore", "SwiftVMM", "Firmware", "GuestMemory"]),
    ],
    swiftLanguageModes: [.v6]
)
