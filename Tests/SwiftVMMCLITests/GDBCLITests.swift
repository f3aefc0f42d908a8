import Foundation
import Testing

/// Debian's gdb (the toolchain's lldb does not start on Debian 12).
let debianGDB: String? = FileManager.default.isExecutableFile(atPath: "/usr/bin/gdb") ? "/usr/bin/gdb" : nil

/// `swiftvmm run --gdb` driven by Debian's `gdb` in batch mode, against
/// Guests/gdb-target.S (real mode, then protected, then long mode), which is
/// assembled here into a flat binary for swiftvmm and an ELF with symbols for gdb.
@Suite(.serialized, .enabled(if: debianGDB != nil, "SKIPPED: no gdb at /usr/bin/gdb (Debian's gdb package)"))
struct GDBCLITests {

    /// The guest's flat binary and ELF, built once.
    static let guest: Result<(binary: String, elf: String), any Error> = Result {
        let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let repository = here.deletingLastPathComponent().deletingLastPathComponent()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-gdb-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let script = directory.appendingPathComponent("flat.ld").path
        try "SECTIONS { . = 0x7c00; .text : { *(.text .text.*) } .data : { *(.data .data.*) } }\n".write(
            toFile: script, atomically: true, encoding: .utf8)
        let object = directory.appendingPathComponent("gdb-target.o").path
        let elf = directory.appendingPathComponent("gdb-target.elf").path
        let binary = directory.appendingPathComponent("gdb-target.bin").path
        try tool(
            "clang",
            [
                "-c", "-target", "x86_64-unknown-none-elf", "-nostdinc", "-I", repository.appendingPathComponent("firmware/include").path,
                "-o", object, here.appendingPathComponent("Guests/gdb-target.S").path,
            ])
        try tool("ld.lld", ["-nostdlib", "-static", "-T", script, "-o", elf, object])
        try tool("ld.lld", ["--oformat=binary", "-nostdlib", "-static", "-T", script, "-o", binary, object])
        return (binary, elf)
    }

    /// Runs a toolchain program found on PATH.
    static func tool(_ name: String, _ arguments: [String]) throws {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/\(name)" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else { throw CLITestError.binaryNotFound(name) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CLITestError.spawnFailed(path, process.terminationStatus) }
    }

    /// Starts `path` with stdout and stderr to `output` and every signal
    /// unblocked and at its default: Foundation's `Process` passes on the
    /// test thread's blocked mask, and a gdb with SIGINT blocked never sees Ctrl-C.
    static func spawn(_ path: String, _ arguments: [String], output: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Other tests' pipes must not stay open in gdb (a restore test waits for its stdin's end).
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) } ?? []
        for fd in open where fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        guard result == 0 else { throw CLITestError.spawnFailed(path, result) }
        return pid
    }

    struct Session {
        var gdb: String
        var vmm: CommandResult
    }

    /// Starts swiftvmm waiting for a debugger on a Unix socket, runs gdb with
    /// `commands` against it (sending gdb SIGINT after `interruptAfter`
    /// seconds, as Ctrl-C would), and waits for both to end.
    func debug(_ commands: [String], cpus: Int = 1, interruptAfter: Double? = nil) throws -> Session {
        let (binary, elf) = try Self.guest.get()
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent(
            "swiftvmm-gdb-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        ).path
        defer { unlink(socket) }
        nonisolated(unsafe) var vmm: Result<CommandResult, any Error>?
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            vmm = Result {
                try runSwiftVMM(
                    ["run", "--mode", "real", "--cpus", "\(cpus)", "--gdb", "unix:\(socket)", "--gdb-wait", "--timeout", "20s", binary],
                    timeout: 90)
            }
            group.leave()
        }
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: socket), Date() < deadline { usleep(20_000) }
        let arguments = ["-batch", "-nx", "-ex", "target remote \(socket)"] + commands.flatMap { ["-ex", $0] } + [elf]
        let outputPath = socket + ".out"
        defer { unlink(outputPath) }
        let pid = try Self.spawn(debianGDB ?? "/usr/bin/gdb", arguments, output: outputPath)
        if let interruptAfter {
            usleep(UInt32(interruptAfter * 1e6))
            kill(pid, SIGINT)
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        group.wait()
        guard let vmm else { throw CLITestError.timedOut(arguments) }
        return Session(gdb: text, vmm: try vmm.get())
    }

    @Test func breakpointsInRealAndLongModeRegistersMemoryAndAWatchpoint() throws {
        let session = try debug([
            "break real_mode_point", "continue", "p/x $pc", "set $rbx = 0x77", "p/x $rbx", "x/4xb &watched",
            // Five breakpoints: four take the debug-register slots, the fifth is a planted int3.
            "break set_pe", "break to_protected", "break protected_entry", "break long_entry", "continue", "continue", "continue",
            "continue", "p/x $cr0", "p/x $efer", "delete", "watch *(int*)&watched", "continue", "delete",
            "set var *(int*)&watched = 0x21", "continue",
        ])
        let gdb = session.gdb
        #expect(gdb.contains("Breakpoint 1, 0x0000000000007c0c in real_mode_point ()"), "\(gdb)")
        #expect(gdb.contains("$1 = 0x7c0c"))
        #expect(gdb.contains("$2 = 0x77"))
        #expect(gdb.contains("0x00\t0x00\t0x00\t0x00"))
        for (number, symbol) in [(2, "set_pe"), (3, "to_protected"), (4, "protected_entry"), (5, "long_entry")] {
            #expect(gdb.contains("Breakpoint \(number), 0x") && gdb.contains("in \(symbol) ()"), "\(symbol): \(gdb)")
        }
        #expect(gdb.contains("$3 = 0x80000011"), "paging and protection on in long mode")
        #expect(gdb.contains("$4 = 0x500"), "EFER.LME and LMA")
        #expect(gdb.contains("Old value = 0") && gdb.contains("New value = 90") && gdb.contains("in after_write ()"), "\(gdb)")
        #expect(gdb.contains("exited with code 041"), "the guest exits with the value gdb wrote")
        #expect(session.vmm.status == 0x21, "\(session.vmm.stderr)")
    }

    @Test func stepAcrossAModeSwitchThenDetach() throws {
        let session = try debug([
            "break set_pe", "continue", "p/x $cs", "stepi", "p/x $cr0", "stepi", "p/x $cs", "p $pc", "info registers rip", "detach",
        ])
        let gdb = session.gdb
        #expect(gdb.contains("$1 = 0x0"), "real mode: CS 0; \(gdb)")
        #expect(gdb.contains("$2 = 0x11"), "the mov to CR0 set PE")
        #expect(gdb.contains("$3 = 0x8"), "the far jump loaded the 32-bit code segment")
        #expect(gdb.contains("<protected_entry>"))
        #expect(gdb.contains("[Inferior 1 (Remote target) detached]"))
        // Detached, the guest runs on to its end.
        #expect(session.vmm.status == 0x5a, "\(session.vmm.stderr)")
    }

    @Test func twoVCPUsAreTwoThreadsAndCtrlCStopsASpinningGuest() throws {
        let session = try debug(
            ["info threads", "thread 2", "p/x $pc", "thread 1", "set var *(char*)&spin = 1", "continue", "p $pc", "kill"], cpus: 2,
            interruptAfter: 1.5)
        let gdb = session.gdb
        #expect(gdb.contains("1    Thread 1") && gdb.contains("2    Thread 2"), "\(gdb)")
        #expect(gdb.contains("$1 = 0xfff0"), "the application processor waits at the reset vector")
        #expect(gdb.contains("received signal SIGINT"), "\(gdb)")
        #expect(gdb.contains("in spin_loop ()") || gdb.contains("<spin_loop"))
        #expect(gdb.contains("[Inferior 1 (Remote target) killed]"))
        #expect(session.vmm.stderr.contains("stopped on request"), "\(session.vmm.stderr)")
    }
}
