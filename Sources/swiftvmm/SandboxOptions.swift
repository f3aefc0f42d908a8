import ArgumentParser
import Sandbox
import SwiftVMM
import SwiftVMMConfig

#if canImport(Glibc)
    import Glibc
#endif

/// `--seccomp`, `--landlock`, `--user`, `--chroot`, `--core-dumps`: what `run`, `restore`
/// and `serve` confine the VMM with (README, "Sandbox").
struct SandboxOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "seccomp filters per thread: enforce (a forbidden system call kills the VMM with SIGSYS), log (it is reported and allowed) or off. Default: enforce.",
            valueName: "mode"))
    var seccomp: SeccompMode = .enforce

    @Option(
        help: ArgumentHelp(
            "Landlock: each thread may reach only the paths it needs after start-up (the snapshot directory, /proc/self/status): enforce or off. Default: enforce where the kernel has Landlock.",
            valueName: "mode"))
    var landlock: LandlockMode = .enforce

    @Option(
        name: .customLong("landlock-dir"),
        help: ArgumentHelp(
            "serve: confine the API's threads to this directory (repeatable; kernels, drives, snapshots, logs, metrics and sockets the API names must be in one), /dev/kvm and /dev/net/tun. Without it they are not confined. run, restore: reachable too.",
            valueName: "dir"))
    var landlockDirectories: [String] = []

    @Option(
        help: ArgumentHelp(
            "Run as this user and group once /dev/kvm, the images, taps and sockets are open (e.g. 65534:65534).", valueName: "uid:gid"))
    var user: String?

    @Option(help: ArgumentHelp("Make this directory the root once everything is open (needs root).", valueName: "dir"))
    var chroot: String?

    @Flag(help: "Allow core dumps (off by default; guest RAM is never in one).")
    var coreDumps = false

    /// Acted on in `SwiftVMMCommand.main`, before the arguments are parsed.
    @Flag(
        help: ArgumentHelp(
            "Close every descriptor inherited past stderr, first thing, also a Unix socket to the parent process (which is kept by default: Foundation's Process learns that its child ended from one)."
        ))
    var closeInheritedFds = false

    /// Acted on in `SwiftVMMCommand.main`, before the arguments are parsed.
    @Flag(help: ArgumentHelp("Keep the descriptors inherited past stderr (closed by default)."))
    var keepInheritedFds = false

    static let closeInheritedFdsFlag = "--close-inherited-fds"
    static let keepInheritedFdsFlag = "--keep-inherited-fds"

    /// What `main` does with inherited descriptors, from the raw arguments
    /// (before parsing: nothing of the VMM's own may be open yet).
    static func inheritedDescriptorPolicy(_ arguments: [String]) -> (close: Bool, keepParentSocket: Bool) {
        if arguments.contains(keepInheritedFdsFlag) { return (false, false) }
        return (true, !arguments.contains(closeInheritedFdsFlag))
    }

    @Option(
        help: ArgumentHelp(
            "Guest serial output (stdout, --serial2, --debugcon) allowed per second after a burst of 8 times as much; the rest is dropped. 0: no limit. Default: 1M.",
            valueName: "size"))
    var serialRateLimit: String?

    /// The rate limit `--serial-rate-limit` asks for (`nil`: none).
    var outputRateLimit: OutputRateLimit? {
        get throws {
            guard let serialRateLimit else { return .standard }
            let bytes: UInt64
            do { bytes = try CommandLineValue.parseSize(serialRateLimit, pageMultiple: false) } catch {
                throw ValidationError("--serial-rate-limit: \(error)")
            }
            guard bytes > 0 else { return nil }
            let rate = Int(clamping: bytes)
            return OutputRateLimit(bytesPerSecond: rate, burst: rate.multipliedReportingOverflow(by: 8).overflow ? Int.max : rate * 8)
        }
    }

    func validate() throws {
        _ = try outputRateLimit
        if let user, Privileges.parseUser(user) == nil {
            throw ValidationError("--user: '\(user)' is not UID:GID (numbers, e.g. 65534:65534)")
        }
    }

    /// The filters compiled and the handler installed (the threads started from now on
    /// install theirs, and give up their capabilities: all of them if `dropCapabilities`); the main
    /// thread is confined later by `confine()`, which must be given the same `dropCapabilities`.
    /// `landlockPolicy`: what the threads may reach once confined (`serve`'s
    /// confines only the threads that open no path; see `sessionPolicy`).
    func prepare(dropCapabilities: Bool = true, landlockPolicy: LandlockPolicy = .server) throws {
        OutputRateLimit.forNewOutputs = try outputRateLimit
        Sandbox.dropCapabilitiesOnEveryThread(dropCapabilities, userSwitchFollows: user != nil)
        do {
            try Sandbox.enable(mode: seccomp)
            if case .unsupported(let errno) = try Sandbox.enableLandlock(mode: landlock, policy: landlockPolicy) {
                MachineSession.report("warning: this kernel has no Landlock (errno \(errno)): file-system access is not confined")
            }
        } catch {
            MachineSession.report("error: \(error)")
            throw ExitCode(1)
        }
    }

    /// `run` and `restore`'s Landlock policy: `/proc/self/status` and the
    /// snapshot directory Ctrl-A s writes, if it exists now or stdin is a
    /// terminal (Ctrl-A s is only read from one; it is created now, as Ctrl-A
    /// s would, since a rule needs a directory to name). Otherwise Ctrl-A s
    /// has nowhere to write, and nothing is created in the working directory.
    func sessionPolicy(snapshotDirectory: String) -> LandlockPolicy {
        guard landlock != .off else { return .session(snapshotDirectory: nil) }
        if isatty(STDIN_FILENO) == 1 { _ = mkdir(snapshotDirectory, 0o700) }
        var status = stat()
        let exists = stat(snapshotDirectory, &status) == 0 && status.st_mode & S_IFMT == S_IFDIR
        var policy = LandlockPolicy.session(snapshotDirectory: exists ? snapshotDirectory : nil)
        policy.reachable? += landlockDirectories.map { PathRule($0, .readWrite) }
        return policy
    }

    /// `serve`'s Landlock policy: with `--landlock-dir`, its directories and the
    /// devices a machine is built from that this host has; without, none for
    /// the API's threads.
    var serverPolicy: LandlockPolicy {
        let candidates: [String] = ["/dev/kvm", "/dev/net/tun"]
        let devices = candidates.filter { access($0, F_OK) == 0 }
        return .server(directories: landlockDirectories, devices: devices)
    }

    /// Drops privileges and confines the main thread (the files, sockets and
    /// threads that need more are open). `dropCapabilities`: `serve` keeps a
    /// root VMM's capabilities (it opens taps later) unless `--user` is given.
    func confine(dropCapabilities: Bool = true) throws {
        var privileges = Privileges()
        privileges.user = user.flatMap(Privileges.parseUser)
        privileges.chrootDirectory = chroot
        privileges.coreDumps = coreDumps
        privileges.dropCapabilities = dropCapabilities
        do {
            // Every thread, not only this one (capabilities are per thread): /proc shows them all.
            // Not in sanitized builds: ThreadSanitizer's own thread starts before main and keeps its.
            let checkThreads = (dropCapabilities || user != nil) && !Sandbox.isSanitized
            // The threads already running empty their bounding sets as they start, which takes
            // the CAP_SETPCAP that --user's switch (made by every thread) takes away: wait for them.
            if checkThreads, user != nil { try Sandbox.checkNoThreadHoldsCapabilities(boundingOnly: true) }
            try privileges.apply()
            if checkThreads { try Sandbox.checkNoThreadHoldsCapabilities() }
            try Sandbox.confineMainThread()
        } catch {
            MachineSession.report("error: \(error)")
            throw ExitCode(1)
        }
        #if DEBUG
            Sandbox.runTestProbe()
        #endif
    }
}

extension SeccompMode: ExpressibleByArgument {}
extension LandlockMode: ExpressibleByArgument {}
