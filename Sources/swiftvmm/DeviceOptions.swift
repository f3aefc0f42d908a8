import ArgumentParser

/// The virtio devices `swiftvmm run` can give a machine.
struct DeviceOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "A virtio-blk disk on a raw image file; repeat for several. Options: readonly=on, direct=on (O_DIRECT), id=TEXT (get-id).",
            valueName: "path=file[,readonly=on]"))
    var disk: [String] = []

    @Option(help: ArgumentHelp("A virtio-net interface on a host tap device; repeat for several.", valueName: "tap=name[,mac=mac]"))
    var net: [String] = []

    @Option(
        help: ArgumentHelp(
            "A virtio-vsock device: the guest's CID (3 or more) and the Unix socket host programs connect to (CONNECT <port>).",
            valueName: "cid=n,socket=path"))
    var vsock: String?

    @Flag(help: "A virtio-rng device, fed from the host's getrandom.")
    var rng = false

    @Flag(help: "A virtio-balloon device (inflate, deflate, statistics, free-page reporting).")
    var balloon = false

    @Option(
        help: ArgumentHelp(
            "A virtio console (hvc0 in Linux): a Unix socket whose client is the console, or a file for its output.",
            valueName: "socket:path|file:path"))
    var consoleDevice: String?
}
