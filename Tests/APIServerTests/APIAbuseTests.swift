import Foundation
import Testing
import VMMTesting

#if canImport(Glibc)
    import Glibc
#endif

/// Clients that misbehave: many at once, half requests, disconnects, a long
/// stream of requests. The VMM keeps serving, a running guest keeps running,
/// and its file descriptors and memory come back.
@Suite(.serialized) struct APIAbuseTests {
    /// The server with a short idle timeout, so that half requests are cut in the test's time.
    func serve(_ directory: ScratchDirectory) throws -> ServedVMM {
        try ServedVMM(directory, extraArguments: ["--http-idle-timeout-ms", "1000"])
    }

    /// Waits until the server holds no more than `fds` descriptors (closing is asynchronous).
    func settle(_ served: ServedVMM, to fds: Int, seconds: Double = 15) -> Int {
        let deadline = Date().addingTimeInterval(seconds)
        var count = served.fileDescriptorCount
        while count > fds, Date() < deadline {
            usleep(20_000)
            count = served.fileDescriptorCount
        }
        return count
    }

    @Test func twoHundredConcurrentClientsAreAllAnswered() throws {
        let directory = try ScratchDirectory()
        let served = try serve(directory)
        _ = try served.get("/")
        let baseline = served.fileDescriptorCount
        let answered = ThreadCounter()
        DispatchQueue.concurrentPerform(iterations: 200) { index in
            if let response = try? served.client.request(
                index % 2 == 0 ? "GET" : "PUT", index % 2 == 0 ? "/" : "/logger", index % 2 == 0 ? nil : "{}"),
                response.status == (index % 2 == 0 ? 200 : 204)
            {
                answered.add()
            }
        }
        #expect(answered.value == 200)
        #expect(settle(served, to: baseline) <= baseline)
    }

    @Test func halfRequestsAndDisconnectsNeitherStallTheServerNorTheGuestNorLeak() throws {
        let directory = try ScratchDirectory()
        let guest = try slowTicker(in: directory)
        let served = try serve(directory)
        _ = try served.get("/")
        let baseline = served.fileDescriptorCount
        let client = served.client
        // Slowloris: 50 connections that send part of a request and then nothing.
        var held: [Int32] = []
        for index in 0..<50 {
            let fd = try client.connect()
            let partial =
                index % 2 == 0 ? "PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{\"vcpu" : "GET / HTTP/1.1\r\nHo"
            try UnixHTTPClient.send(fd, Array(partial.utf8))
            held.append(fd)
        }
        // Mid-request disconnects: 50 clients that hang up before the answer.
        for _ in 0..<50 {
            let fd = try client.connect()
            try UnixHTTPClient.send(fd, UnixHTTPClient.requestBytes("PUT", "/logger", body: "{}", keepAlive: true).dropLast(1).map { $0 })
            close(fd)
        }
        // Meanwhile the API answers and the guest boots and runs.
        #expect(try served.put("/x-swiftvmm", #"{"guest": "\#(guest)", "mode": "protected"}"#).status == 204)
        #expect(try served.put("/actions", #"{"action_type": "InstanceStart"}"#).status == 204)
        try served.waitForOutput("tick 02 ")
        #expect(try served.get("/").status == 200)
        for fd in held { close(fd) }
        #expect(try served.waitForExit() == 0x30)
        #expect(served.stdout.split(separator: "\n").map(String.init) == tickerLines(1...24))
        _ = baseline
    }

    @Test func halfRequestsAreCutAtTheIdleTimeout() throws {
        let directory = try ScratchDirectory()
        let served = try serve(directory)
        _ = try served.get("/")
        let baseline = served.fileDescriptorCount
        let fd = try served.client.connect()
        defer { close(fd) }
        try UnixHTTPClient.send(fd, Array("GET / HTTP/1.1\r\nHo".utf8))
        // Accepting is asynchronous: wait for the server to hold the connection.
        let deadline = Date().addingTimeInterval(5)
        while served.fileDescriptorCount < baseline + 1, Date() < deadline { usleep(2_000) }
        // The server closes it after its idle timeout (1 s here): recv sees the end.
        var byte: UInt8 = 0
        let start = Date()
        let received = recv(fd, &byte, 1, 0)
        #expect(received == 0, "the server closed the half request")
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(settle(served, to: baseline) <= baseline)
    }

    @Test func tenThousandSequentialRequestsLeaveFileDescriptorsAndMemoryWhereTheyWere() throws {
        let directory = try ScratchDirectory()
        let served = try serve(directory)
        for _ in 0..<200 { _ = try served.get("/") }
        let baselineFDs = served.fileDescriptorCount
        let baselineRSS = served.residentKiB
        var ok = 0
        // 1,000 on connections of their own (each an accept and a close), 9,000 on one kept-alive connection.
        for index in 0..<1_000 {
            if try served.client.request("GET", index % 2 == 0 ? "/" : "/machine-config").status == 200 { ok += 1 }
        }
        let fd = try served.client.connect()
        for _ in 0..<9_000 {
            try UnixHTTPClient.send(fd, UnixHTTPClient.requestBytes("GET", "/", body: nil, keepAlive: true))
            if try UnixHTTPClient.readResponse(fd).status == 200 { ok += 1 }
        }
        close(fd)
        #expect(ok == 10_000)
        #expect(settle(served, to: baselineFDs) <= baselineFDs)
        // Memory: no growth that scales with requests (a leak of even 100 bytes each would be 1 MiB).
        // Under a sanitizer the child's allocator quarantines what is freed (ASan keeps up to 256 MiB),
        // so only the plain run can see that; the sanitizer run's LeakSanitizer checks leaks instead.
        let grown = served.residentKiB - baselineRSS
        if !ProcessResources.underSanitizer { #expect(grown < 1024, "RSS grew by \(grown) KiB over 10,000 requests") }
    }
}

/// A counter many threads add to.
final class ThreadCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
