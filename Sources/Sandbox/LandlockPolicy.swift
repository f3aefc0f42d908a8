/// Which paths each kind of thread may reach once it is confined with
/// Landlock (the README's "Landlock" paragraph says the same, and why).
///
/// Two domains: threads that never open a path after start-up (vCPUs, the
/// virtio I/O loop, timers, the GDB stub: their seccomp filters have no
/// `openat` either) reach nothing; the main thread and the threads that may
/// write a snapshot or serve the API (console, API, migration) reach
/// `reachable`, or everything where that is `nil` (`serve`, whose API client
/// names kernels, drives, snapshots, logs and metrics files after start-up).
public struct LandlockPolicy: Sendable, Equatable {
    /// What the main, console, API and migration threads may reach; `nil`: not confined.
    public var reachable: [PathRule]?

    public init(reachable: [PathRule]?) { self.reachable = reachable }

    /// The rules of `kind`'s domain: `[]` reaches nothing, `nil` is no domain.
    public func rules(for kind: ThreadKind) -> [PathRule]? {
        kind.opensNoPaths ? [] : reachable
    }

    /// `run` and `restore`: the snapshot directory Ctrl-A s writes (read,
    /// write, create and replace files in it, if there is one), and two of
    /// the process's own files: `/proc/self/pagemap` (a snapshot writes only
    /// the pages of RAM the guest touched) and `/proc/self/status` (`--stats`'
    /// peak RSS).
    public static func session(snapshotDirectory: String?) -> LandlockPolicy {
        var rules = [PathRule("/proc/self/pagemap", .readFile), PathRule("/proc/self/status", .readFile)]
        if let snapshotDirectory { rules.append(PathRule(snapshotDirectory, .readWrite)) }
        return LandlockPolicy(reachable: rules)
    }

    /// `serve` without `--landlock-dir`: only the threads that never open a path are confined.
    public static let server = LandlockPolicy(reachable: nil)

    /// `serve --landlock-dir DIR...`, Firecracker's jailer's model without a
    /// chroot: whatever the API client names (kernels, drives, snapshots,
    /// logs, metrics, vsock and migration sockets) must be in `directories`
    /// (everything but executing, linking across directories and device
    /// nodes), plus `devices` (`/dev/kvm`, `/dev/net/tun`: read, write and
    /// their `ioctl`s) and the process's pagemap and status.
    public static func server(directories: [String], devices: [String]) -> LandlockPolicy {
        guard !directories.isEmpty else { return server }
        let directoryAccess = FileAccess.readWrite.union([.makeSocket, .makeFIFO, .makeSymlink])
        return LandlockPolicy(
            reachable: directories.map { PathRule($0, directoryAccess) }
                + devices.map { PathRule($0, [.readFile, .writeFile, .ioctlDevice]) } + [
                    PathRule("/proc/self/pagemap", .readFile), PathRule("/proc/self/status", .readFile),
                ])
    }
}

extension ThreadKind {
    /// Whether the kind's threads never open a path after start-up: they use
    /// descriptors opened for them (their seccomp filters have no `openat`).
    public var opensNoPaths: Bool { [.vcpu, .io, .timer, .gdb].contains(self) }
}
