import ArgumentParser
import Logging

/// The options of a machine's run that `run` and `restore` share: how long it
/// may run, where COM2 and the debug console go, what the VMM logs, whether it
/// prints statistics, and where Ctrl-A s saves it.
struct SessionOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Stop the guest if it is still running after this long (500ms, 30s, 2m; a bare number is seconds).", valueName: "duration"))
    var timeout: String?

    @Option(help: ArgumentHelp("Send COM2 (0x2f8) to a file, created or truncated.", valueName: "file:path"))
    var serial2: String?

    @Option(help: ArgumentHelp("Send the debug console (port 0xe9, QEMU's debugcon) to a file, created or truncated.", valueName: "path"))
    var debugcon: String?

    @Option(help: "What the VMM logs on stderr: trace, debug, info, notice, warning, error or critical. Default: info.")
    var logLevel: Logger.Level?

    @Flag(help: "Print the number of VM exits, the time the guest ran and the VMM's peak RSS on stderr at the end.")
    var stats = false

    @Option(
        help: ArgumentHelp(
            "The directory Ctrl-A s saves the machine to (replacing the snapshot there); `swiftvmm restore` takes it. Default: ./swiftvmm-snapshot.",
            valueName: "path"))
    var snapshotDir: String?
}
