import Foundation
import Testing

/// What a run of the `swiftvmm` binary produced.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
    /// Whether the process died of a signal (`status` is then its number).
    var killedBySignal = false
}

enum CLITestError: Error, CustomStringConvertible {
    case binaryNotFound(String)
    case timedOut([String])
    case spawnFailed(String, Int32)
    var description: String {
        switch self {
        case .binaryNotFound(let path): return "swiftvmm binary not found at \(path); build it with `swift build` first"
        case .timedOut(let arguments): return "swiftvmm \(arguments.joined(separator: " ")) did not finish within its deadline"
        case .spawnFailed(let path, let code): return "cannot start \(path): \(String(cString: strerror(code)))"
        }
    }
}

/// The `swiftvmm` executable built next to this test bundle.
func swiftvmmBinary() throws -> URL {
    if let explicit = ProcessInfo.processInfo.environment["SWIFTVMM_BINARY"] { return URL(fileURLWithPath: explicit) }
    let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var directory = testBinary.deletingLastPathComponent()
    // The test bundle may be a directory (swiftvmmPackageTests.xctest/...) on some toolchains.
    for _ in 0..<3 {
        let candidate = directory.appendingPathComponent("swiftvmm")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    throw CLITestError.binaryNotFound(testBinary.deletingLastPathComponent().appendingPathComponent("swiftvmm").path)
}

/// Runs `swiftvmm` with `arguments`, killing it if it runs longer than `timeout` seconds.
func runSwiftVMM(
    _ arguments: [String], input: Data? = nil, timeout: TimeInterval = 120, environment: [String: String]? = nil
) throws -> CommandResult {
    try runProcess(try swiftvmmBinary(), arguments, input: input, timeout: timeout, environment: environment)
}

/// Runs `executable` with `arguments`, killing it if it runs longer than `timeout` seconds.
func runProcess(
    _ executable: URL, _ arguments: [String], input: Data? = nil, timeout: TimeInterval, environment: [String: String]? = nil
) throws -> CommandResult {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let stdin = Pipe()
    process.standardInput = input == nil ? FileHandle.nullDevice : stdin
    try process.run()
    if let input {
        // Late, from another thread: the guest must wait for input, not find it there at once.
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) {
            stdin.fileHandleForWriting.write(input)
            try? stdin.fileHandleForWriting.close()
        }
    }
    // Drain both pipes while the process runs so a chatty guest cannot block on a full pipe.
    nonisolated(unsafe) var stdoutData = Data()
    nonisolated(unsafe) var stderrData = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        stdoutData = out.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    group.enter()
    DispatchQueue.global().async {
        stderrData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning {
        process.terminate()
        process.waitUntilExit()
        throw CLITestError.timedOut(arguments)
    }
    process.waitUntilExit()
    group.wait()
    return CommandResult(
        status: process.terminationStatus,
        stdout: String(decoding: stdoutData, as: UTF8.self),
        stderr: String(decoding: stderrData, as: UTF8.self), killedBySignal: process.terminationReason == .uncaughtSignal)
}

/// A temporary file holding `bytes`, removed when the test's scope ends.
final class TemporaryFile {
    let path: String
    init(_ bytes: [UInt8], name: String = "guest.bin") throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
    deinit { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
}

/// Makes a spawned child close every descriptor above standard error.
///
/// glibc's `posix_spawn_file_actions_addclosefrom_np` does this atomically, but
/// Swift's Glibc module does not import it (it is a GNU extension), so it is
/// looked up at run time.
private func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return }
    _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
}

/// A shell in a detached tmux session, driven with send-keys and read with capture-pane.
final class TmuxSession {
    let name = "swiftvmm-\(getpid())-\(UUID().uuidString.prefix(8))"
    let tmux: String

    init() throws {
        guard let tmux = ["/usr/bin/tmux", "/bin/tmux"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw CLITestError.binaryNotFound("tmux (.ci/run installs it)")
        }
        self.tmux = tmux
        _ = try run(["new-session", "-d", "-s", name, "-x", "160", "-y", "40", "/bin/sh"])
    }

    deinit { _ = try? run(["kill-session", "-t", name]) }

    /// Runs `tmux arguments` and returns its standard output.
    ///
    /// Not through Foundation's `Process`: the first tmux command forks the
    /// tmux server, which inherits every descriptor the client had, including
    /// the socket `Process` watches to learn that its child exited; with the
    /// server alive for the whole test, `waitUntilExit` then never returns
    /// (swift-corelibs-foundation issue 4795). Here the child keeps only its
    /// standard descriptors and the client is reaped by `waitpid` on its pid.
    @discardableResult
    func run(_ arguments: [String]) throws -> String {
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else { throw CLITestError.spawnFailed(tmux, errno) }
        // Other children started meanwhile close what they inherit (Foundation's
        // `Process` and `closeInheritedDescriptors` both do), so this is enough.
        _ = fcntl(pipeEnds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipeEnds[1], F_SETFD, FD_CLOEXEC)
        defer { close(pipeEnds[0]) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        closeInheritedDescriptors(&actions)
        let argv: [UnsafeMutablePointer<CChar>?] = ([tmux] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, tmux, &actions, nil, argv, environ)
        close(pipeEnds[1])
        guard spawned == 0 else { throw CLITestError.spawnFailed(tmux, spawned) }
        // The server redirects its standard descriptors to /dev/null, so the
        // pipe ends when the client exits.
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(pipeEnds[0], $0.baseAddress, $0.count) }
            if count > 0 {
                output += buffer[..<count]
            } else if count == 0 || errno != EINTR {
                break
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return String(decoding: output, as: UTF8.self)
    }

    /// Types `text` literally, then Enter if asked.
    func type(_ text: String, enter: Bool = false) throws {
        try run(["send-keys", "-t", name, "-l", text])
        if enter { try run(["send-keys", "-t", name, "Enter"]) }
    }

    /// Sends tmux key names (`C-a`, `x`, `Enter`).
    func keys(_ keys: [String]) throws { try run(["send-keys", "-t", name] + keys) }

    var screenText: String { (try? run(["capture-pane", "-t", name, "-p"])) ?? "" }

    /// Polls the screen until it contains `text` or `seconds` pass.
    func waitFor(_ text: String, seconds: Double) throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if screenText.contains(text) { return true }
            usleep(100_000)
        }
        return false
    }
}
