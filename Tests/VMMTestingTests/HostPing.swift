import Foundation
import HostSupport
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// busybox's `ping -c 2 -w 20` from a network namespace to a guest, run on a
/// thread of its own while the test keeps the guest running: the guest can
/// only answer while its vCPU runs, and the test's thread is the one that
/// runs it.
///
/// busybox's ping sends each request after the first, and gives up at its
/// `-w` deadline, from a SIGALRM handler. A child inherits its parent's
/// signal mask, and the test runs on a thread that blocks SIGALRM and
/// SIGTERM (as Dispatch's workers do): a ping spawned from there sent one
/// request, never a second, never timed out, and ignored `terminate()`,
/// which is how this test once hung the run. The ping is spawned with no
/// signal blocked.
final class HostPing: Sendable {
    private let result = ThreadLock<(status: Int32, output: String)?>(nil)
    private let failure = ThreadLock<String?>(nil)
    private let pid = ThreadLock<Int32>(0)
    private let thread: JoinHandle?

    init(namespace: String, address: String) {
        let (result, failure, pid) = (self.result, self.failure, self.pid)
        thread = try? HostThread.spawn(name: "host-ping") {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            process.arguments = ["netns", "exec", namespace, "/bin/busybox", "ping", "-c", "2", "-w", "20", address]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            var none = sigset_t()
            var saved = sigset_t()
            sigemptyset(&none)
            pthread_sigmask(SIG_SETMASK, &none, &saved)
            do { try process.run() } catch {
                pthread_sigmask(SIG_SETMASK, &saved, nil)
                failure.withLock { $0 = "cannot start ping: \(error)" }
                return
            }
            pthread_sigmask(SIG_SETMASK, &saved, nil)
            pid.withLock { $0 = process.processIdentifier }
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            result.withLock { $0 = (process.terminationStatus, output) }
        }
        if thread == nil { failure.withLock { $0 = "cannot start the ping thread" } }
    }

    /// Whether the ping has ended (or never started).
    var isFinished: Bool { result.withLock { $0 != nil } || failure.withLock { $0 != nil } }

    /// Ends the ping if it still runs (SIGKILL, which no mask holds back),
    /// waits for it, and returns its exit status and what it printed.
    func finish() throws -> (status: Int32, output: String) {
        if !isFinished, case let running = pid.withLock({ $0 }), running > 0 { kill(running, SIGKILL) }
        thread?.join()
        if let problem = failure.withLock({ $0 }) { throw HostCommand.Failure(description: problem) }
        guard let outcome = result.withLock({ $0 }) else { throw HostCommand.Failure(description: "ping said nothing") }
        return outcome
    }
}
