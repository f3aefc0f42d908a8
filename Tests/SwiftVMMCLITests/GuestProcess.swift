import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A running `swiftvmm` (or a command that execs it, such as `ip netns exec`)
/// that a test talks to while it runs: its standard output is collected as
/// it comes, standard input is a pipe the test writes to, and its pid is
/// there for /proc.
final class GuestProcess: @unchecked Sendable {
    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let errors = Pipe()
    private let lock = NSLock()
    private var stdoutData = Data()
    private var stderrData = Data()
    private let drained = DispatchGroup()

    /// Starts `executable` with `arguments`.
    init(executable: URL, arguments: [String]) throws {
        process.executableURL = executable
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        for (pipe, isStdout) in [(output, true), (errors, false)] {
            drained.enter()
            // A thread of its own: Dispatch's pool can be busy for seconds under the whole suite.
            Thread.detachNewThread { [self] in
                let handle = pipe.fileHandleForReading
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    lock.withLock {
                        if isStdout { stdoutData.append(chunk) } else { stderrData.append(chunk) }
                    }
                }
                drained.leave()
            }
        }
    }

    /// Starts the `swiftvmm` built next to the tests with `arguments`.
    convenience init(swiftvmm arguments: [String]) throws {
        try self.init(executable: try swiftvmmBinary(), arguments: arguments)
    }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    var pid: Int32 { process.processIdentifier }
    var stdout: String { lock.withLock { String(decoding: stdoutData, as: UTF8.self) } }
    var stderr: String { lock.withLock { String(decoding: stderrData, as: UTF8.self) } }

    /// Waits until standard output contains `text`; false if `seconds` pass or the process ends first.
    func waitForOutput(_ text: String, seconds: Double) -> Bool {
        wait(seconds: seconds) { self.stdout.contains(text) }
    }

    /// Waits until standard error contains `text`; false if `seconds` pass or the process ends first.
    func waitForStandardError(_ text: String, seconds: Double) -> Bool {
        wait(seconds: seconds) { self.stderr.contains(text) }
    }

    private func wait(seconds: Double, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            if !process.isRunning { return condition() }
            usleep(20_000)
        }
        return false
    }

    /// Writes `text` to the process's standard input.
    func send(_ text: String) {
        input.fileHandleForWriting.write(Data(text.utf8))
    }

    /// Waits for the process to end (killing it after `seconds`) and returns its
    /// exit status, or nil if it had to be killed.
    func finish(seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        var killed = false
        if process.isRunning {
            process.terminate()
            killed = true
        }
        process.waitUntilExit()
        try? input.fileHandleForWriting.close()
        drained.wait()
        return killed ? nil : process.terminationStatus
    }

    /// The process's resident set size from /proc (VmRSS), in bytes.
    var residentBytes: UInt64? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap { UInt64($0) }
            return kilobytes.map { $0 * 1024 }
        }
        return nil
    }
}
