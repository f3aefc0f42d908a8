import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The running `swiftvmm` process as the host sees it from outside, through
/// `/proc/<pid>`: every thread's capabilities, and the descriptors it holds.
@Suite struct SandboxProcessTests {
    /// A real-mode guest that halts with interrupts on and nothing to wake it: it runs until killed.
    static let sleeper: [UInt8] = [0xFB, 0xF4, 0xEB, 0xFD]  // sti; hlt; jmp $-3

    /// A `swiftvmm` child started with `posix_spawn`, with `inherited` as its
    /// descriptor 7 (and `alsoInherited` as its 8); killed and reaped when the
    /// value goes away.
    final class RunningVMM {
        let pid: pid_t
        let stderrPath: String
        /// The write end of the child's stdin: open, so its console reader stays up.
        private let input: Int32

        init(_ arguments: [String], inherited: Int32, alsoInherited: Int32? = nil, stderrPath: String) throws {
            self.stderrPath = stderrPath
            var pipe: [Int32] = [-1, -1]
            guard Glibc.pipe(&pipe) == 0 else { throw CLITestError.spawnFailed("pipe", errno) }
            // Close-on-exec, so no other child spawned meanwhile keeps them; dup2 clears it on 0.
            _ = fcntl(pipe[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(pipe[1], F_SETFD, FD_CLOEXEC)
            input = pipe[1]
            defer { close(pipe[0]) }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_adddup2(&actions, pipe[0], 0)
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            // dup2 clears close-on-exec: the child inherits descriptor 7 on purpose.
            posix_spawn_file_actions_adddup2(&actions, inherited, 7)
            if let alsoInherited { posix_spawn_file_actions_adddup2(&actions, alsoInherited, 8) }
            let binary = try swiftvmmBinary().path
            let argv = ([binary] + arguments).map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            let environment = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer { environment.forEach { free($0) } }
            var pid = pid_t()
            let result = posix_spawn(&pid, binary, &actions, nil, argv, environment)
            guard result == 0 else {
                close(input)
                throw CLITestError.spawnFailed(binary, result)
            }
            self.pid = pid
        }

        deinit {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            close(input)
        }

        var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

        /// The thread names (`comm`) by thread id.
        func threads() -> [String: String] {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            var names = [String: String]()
            for tid in tasks {
                let comm = (try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/comm", encoding: .utf8)) ?? "?"
                names[tid] = comm.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            return names
        }

        /// Waits until the guest runs (a thread named `vcpu 0` exists: the
        /// sandbox is in place before it starts), or `seconds` pass.
        func waitForGuest(seconds: Double) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if threads().values.contains("vcpu 0") { return true }
                if kill(pid, 0) != 0 { return false }
                usleep(20_000)
            }
            return false
        }
    }

    /// Capabilities are per thread: the virtio I/O loop and the console
    /// reader are started with the machine, before the main thread drops its
    /// own, and must drop theirs; with `--user` too (the switch of user
    /// clears the permitted sets, not the bounding set).
    @Test(
        .enabled(if: PrivilegeCLITests.isRoot, "SKIPPED: a VMM that is not root has no capabilities to drop"),
        .disabled(if: SandboxCLITests.sanitized, "SKIPPED: ThreadSanitizer's own thread is started before main and keeps its capabilities"),
        arguments: [[], ["--user", "65534:65534"]])
    func everyThreadOfARootVMMHoldsNoCapability(user: [String]) throws {
        let directory = try TemporaryDirectory(["sleeper.bin": Self.sleeper])
        let inherited = open(directory.path("inherited.txt"), O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        defer { close(inherited) }
        let vmm = try RunningVMM(
            ["run", "--rng", "--timeout", "60s"] + user + [directory.path("sleeper.bin")], inherited: inherited,
            stderrPath: directory.path("stderr.txt"))
        #expect(vmm.waitForGuest(seconds: 30), "the guest never ran: \(vmm.stderr)")
        let threads = vmm.threads()
        #expect(threads.values.contains("virtio-io") && threads.values.contains("console-input"), "threads: \(threads)")
        for (tid, name) in threads {
            // A kernel worker counted among the process's threads (PF_USER_WORKER, KVM's
            // kvm-nx-lpage-recovery) runs no code of the VMM's: the VMM does not check it either.
            let stat = (try? String(contentsOfFile: "/proc/\(vmm.pid)/task/\(tid)/stat", encoding: .utf8)) ?? ""
            let flags = stat.split(separator: ")").last.map { $0.split(separator: " ") }.flatMap { $0.count > 6 ? UInt64($0[6]) : nil }
            if let flags, flags & 0x4000 != 0 { continue }
            let status = (try? String(contentsOfFile: "/proc/\(vmm.pid)/task/\(tid)/status", encoding: .utf8)) ?? ""
            for field in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
                let line = status.split(separator: "\n").first { $0.hasPrefix("\(field):") }
                let value = line.flatMap { UInt64($0.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces), radix: 16) }
                #expect(value == 0, "thread \(tid) '\(name)': \(line.map(String.init) ?? "no \(field)")")
            }
        }
    }

    /// What the launcher left open (7, a file; 8, its end of a socketpair the
    /// launcher made) while the guest runs: by default the file is closed and
    /// the parent's socket kept (Foundation's `Process` watches one to see its
    /// child end); `--close-inherited-fds` closes both, `--keep-inherited-fds` neither.
    @Test(arguments: [
        ([], false, true), (["--close-inherited-fds"], false, false), (["--keep-inherited-fds"], true, true),
    ])
    func inheritedDescriptorsWhileTheGuestRuns(flags: [String], fileStaysOpen: Bool, socketStaysOpen: Bool) throws {
        let directory = try TemporaryDirectory(["sleeper.bin": Self.sleeper])
        let marker = directory.path("inherited.txt")
        let inherited = open(marker, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        defer { close(inherited) }
        var pair: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0)
        defer { pair.forEach { close($0) } }
        let vmm = try RunningVMM(
            ["run"] + flags + ["--rng", "--timeout", "60s", directory.path("sleeper.bin")], inherited: inherited,
            alsoInherited: pair[1], stderrPath: directory.path("stderr.txt"))
        #expect(vmm.waitForGuest(seconds: 30), "the guest never ran: \(vmm.stderr)")
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(vmm.pid)/fd")) ?? []
        #expect(descriptors.contains("0") && descriptors.contains("2"), "\(descriptors)")
        var targets = [String: String]()
        for fd in descriptors {
            targets[fd] = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(vmm.pid)/fd/\(fd)")) ?? "?"
        }
        #expect(targets.values.contains(marker) == fileStaysOpen, "\(flags): \(targets)")
        var socketStatus = stat()
        #expect(fstat(pair[1], &socketStatus) == 0)
        #expect(targets.values.contains("socket:[\(socketStatus.st_ino)]") == socketStaysOpen, "\(flags): \(targets)")
        // The VMM's own files are there (/dev/kvm), so the listing was not of a process that had ended.
        #expect(targets.values.contains("/dev/kvm"), "\(targets)")
    }

    /// A launcher written with Foundation's `Process` still sees its other
    /// children end while the VMM it started runs: the socket its monitor
    /// watches for the VMM is the parent's own, so the VMM keeps it open.
    /// (Closed, the monitor would wait in `waitpid` for the VMM, and this
    /// `/bin/true` would seem to run for the VMM's whole life.)
    @Test func aFoundationLauncherStillSeesItsOtherChildrenEnd() throws {
        let directory = try TemporaryDirectory(["sleeper.bin": Self.sleeper])
        let vmm = Process()
        vmm.executableURL = try swiftvmmBinary()
        vmm.arguments = ["run", "--rng", "--timeout", "60s", directory.path("sleeper.bin")]
        vmm.standardInput = Pipe()
        vmm.standardOutput = FileHandle.nullDevice
        vmm.standardError = FileHandle.nullDevice
        try vmm.run()
        defer {
            vmm.terminate()
            vmm.waitUntilExit()
        }
        // Running a guest: its inherited descriptors were dealt with long before.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, vmm.isRunning {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(vmm.processIdentifier)/task")) ?? []
            let names = tasks.map { (try? String(contentsOfFile: "/proc/\(vmm.processIdentifier)/task/\($0)/comm", encoding: .utf8)) ?? "" }
            if names.contains("vcpu 0\n") { break }
            usleep(20_000)
        }
        #expect(vmm.isRunning, "the VMM ended early (status \(vmm.isRunning ? 0 : vmm.terminationStatus))")
        let other = Process()
        other.executableURL = URL(fileURLWithPath: "/bin/true")
        let started = Date()
        try other.run()
        while other.isRunning, Date().timeIntervalSince(started) < 20 { usleep(10_000) }
        #expect(!other.isRunning, "Foundation did not see /bin/true end within 20 s while the VMM ran")
        #expect(vmm.isRunning, "the VMM was still running when /bin/true's end was seen")
    }
}
