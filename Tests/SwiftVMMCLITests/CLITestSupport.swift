import Foundation
import Testing

/// What a run of the `swiftvmm` binary produced.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum CLITestError: Error, CustomStringConvertible {
    case binaryNotFound(String)
    case timedOut([String])
    var description: String {
        switch self {
        case .binaryNotFound(let path): return "swiftvmm binary not found at \(path); build it with `swift build` first"
        case .timedOut(let arguments): return "swiftvmm \(arguments.joined(separator: " ")) did not finish within its deadline"
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
func runSwiftVMM(_ arguments: [String], input: Data? = nil, timeout: TimeInterval = 120) throws -> CommandResult {
    let process = Process()
    process.executableURL = try swiftvmmBinary()
    process.arguments = arguments
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
        stderr: String(decoding: stderrData, as: UTF8.self))
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

    @discardableResult
    func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tmux)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        // Bounded: under ASan, Foundation once never noticed `tmux new-session -d`
        // exit (its client stayed a zombie) and waitUntilExit() hung the whole run.
        // waitUntilExit() still follows: it lets Foundation release the Process.
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { throw CLITestError.timedOut([tmux] + arguments) }
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
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
