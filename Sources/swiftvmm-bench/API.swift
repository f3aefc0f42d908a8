import Firmware
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The Firecracker-compatible API (`swiftvmm serve`): process start to the
/// socket accepting (wall and CPU time), `InstanceStart` to the guest's first
/// COM1 byte, peak RSS with and without the API, and `GET /` requests per
/// second from 1 and 16 clients on kept-alive connections.
enum APIBenchmark {
    /// A child `swiftvmm serve` with its stdout on a pipe.
    struct Child {
        var pid: pid_t
        var stdout: Int32

        func kill() {
            Glibc.kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            close(stdout)
        }

        /// CPU time of all the child's threads so far (`/proc/PID/task/*/schedstat`), in ms.
        var cpuMilliseconds: Double {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            var total: Double = 0
            for task in tasks {
                let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/schedstat", encoding: .utf8)) ?? ""
                total += Double(text.split(separator: " ").first ?? "0") ?? 0
            }
            return total / 1e6
        }

        /// The child's peak RSS (VmHWM) in MiB.
        var peakRSSMiB: Double {
            let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
                return (Double(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0) / 1024
            }
            return 0
        }
    }

    static func spawn(_ arguments: [String]) -> Child {
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else { fail("pipe: \(errno)") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addclose(&actions, pipeEnds[0])
        let argv = [binaryDirectory + "/swiftvmm"] + arguments
        let cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, argv[0], &actions, nil, cArguments, environ) == 0 else { fail("cannot start \(argv[0])") }
        close(pipeEnds[1])
        return Child(pid: pid, stdout: pipeEnds[0])
    }

    static func connect(_ path: String) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if result == 0 { return fd }
        close(fd)
        return nil
    }

    /// Sends one request on `fd` and reads its answer; returns the status.
    @discardableResult
    static func request(_ fd: Int32, _ method: String, _ path: String, _ body: String? = nil) -> Int {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\n"
        if let body { text += "Content-Length: \(body.utf8.count)\r\n" }
        text += "\r\n" + (body ?? "")
        _ = text.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { return -1 }
            data += buffer[..<count]
            let text = String(decoding: data, as: UTF8.self)
            guard let headEnd = text.range(of: "\r\n\r\n") else { continue }
            let head = text[..<headEnd.lowerBound]
            let length =
                head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            if text.utf8.count - text.utf8.distance(from: text.startIndex, to: headEnd.upperBound) >= length {
                return Int(head.split(separator: " ")[1]) ?? -1
            }
        }
    }

    static func run(rounds: Int) {
        let directory = scratchDirectory("api")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let socketPath = directory + "/api.sock"
        let hello = directory + "/hello.bin"
        let ticker = directory + "/ticker.bin"
        _ = FileManager.default.createFile(atPath: hello, contents: Data(FirmwareImage.protectedHello.bytes))
        _ = FileManager.default.createFile(atPath: ticker, contents: Data(FirmwareImage.protectedSlowTicker.bytes))

        var toSocket: [Double] = []
        var cpuToSocket: [Double] = []
        var toFirstByte: [Double] = []
        for _ in 0..<rounds {
            unlink(socketPath)
            let start = monotonicNanoseconds()
            let child = spawn(["serve", "--api-sock", socketPath])
            var fd: Int32?
            while fd == nil {
                fd = connect(socketPath)
                if fd == nil { usleep(50) }
            }
            toSocket.append(Double(monotonicNanoseconds() - start) / 1e6)
            cpuToSocket.append(child.cpuMilliseconds)
            guard let fd else { continue }
            request(fd, "PUT", "/x-swiftvmm", "{\"guest\": \"\(hello)\", \"mode\": \"protected\"}")
            let started = monotonicNanoseconds()
            request(fd, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}")
            var byte: UInt8 = 0
            _ = read(child.stdout, &byte, 1)
            toFirstByte.append(Double(monotonicNanoseconds() - started) / 1e6)
            close(fd)
            child.kill()
        }
        print("swiftvmm serve (Firecracker API), \(rounds) rounds:")
        print("  process start to the API socket accepting: \(summary(toSocket, "%.2f")) ms wall")
        print("  CPU time by then (all threads):            \(summary(cpuToSocket, "%.2f")) ms  (Firecracker's target: <= 8 CPU ms)")
        print("  InstanceStart sent to the guest's first COM1 byte (protectedmode/hello): \(summary(toFirstByte, "%.2f")) ms")

        // Peak RSS: the slow ticker from a config file, with and without the API.
        let config = directory + "/vm.json"
        _ = FileManager.default.createFile(
            atPath: config, contents: Data("{\"x-swiftvmm\": {\"guest\": \"\(ticker)\", \"mode\": \"protected\"}}".utf8))
        func peak(_ arguments: [String]) -> Double {
            let child = spawn(arguments)
            // Read COM1 until tick 10: the machine has run a while.
            var seen = ""
            var byte: UInt8 = 0
            while !seen.contains("tick 0a"), read(child.stdout, &byte, 1) == 1 { seen.append(Character(UnicodeScalar(byte))) }
            let value = child.peakRSSMiB
            child.kill()
            return value
        }
        var without: [Double] = []
        var with: [Double] = []
        for _ in 0..<max(1, rounds / 4) {
            without.append(peak(["serve", "--config-file", config, "--no-api"]))
            unlink(socketPath)
            with.append(peak(["serve", "--config-file", config, "--api-sock", socketPath]))
        }
        print(
            String(
                format:
                    "  peak RSS running the slow ticker: %.1f MiB without the API, %.1f MiB with it: the API adds %.1f MiB  (target <= 4 MiB)",
                median(without), median(with), median(with) - median(without)))

        // Requests per second.
        unlink(socketPath)
        let server = spawn(["serve", "--api-sock", socketPath])
        defer { server.kill() }
        while connect(socketPath).map({ close($0) }) == nil { usleep(100) }
        for clients in [1, 16] {
            let seconds = 2.0
            let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: clients)
            counts.initialize(repeating: 0)
            defer { counts.deallocate() }
            let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
            nonisolated(unsafe) let shared = counts
            DispatchQueue.concurrentPerform(iterations: clients) { index in
                guard let fd = connect(socketPath) else { return }
                defer { close(fd) }
                var done = 0
                while monotonicNanoseconds() < deadline {
                    guard request(fd, "GET", "/") == 200 else { break }
                    done += 1
                }
                shared[index] = done
            }
            let total = counts.reduce(0, +)
            print(String(format: "  GET / from %2d client(s), kept-alive connections: %.0f requests/s", clients, Double(total) / seconds))
        }
    }
}
