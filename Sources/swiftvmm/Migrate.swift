import ArgumentParser
import Dispatch
import Foundation

/// `swiftvmm migrate`: asks a running `swiftvmm serve --api-sock` to move its
/// machine to a destination (`swiftvmm serve --incoming`), printing progress
/// lines until it has moved or failed.
struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Live-migrate the machine of a `swiftvmm serve --api-sock` to a `swiftvmm serve --incoming`.",
        discussion: """
            Sends PUT /migrate and prints GET /migrate's progress (round, pages sent, dirty rate, \
            estimated downtime, throttle) on stdout while it runs. Exits 0 once the machine runs on \
            the destination, 1 with the fault message if the migration failed (the machine then \
            goes on where it was).
            """)

    @Option(name: .customLong("api-sock"), help: ArgumentHelp("The source's API socket.", valueName: "path"))
    var apiSock: String

    @Option(name: .customLong("to"), help: ArgumentHelp("The destination: unix:PATH or tcp:HOST:PORT.", valueName: "address"))
    var destination: String

    @Option(name: .customLong("downtime-ms"), help: "The longest pause of the guest allowed (default 300).")
    var downtimeMs: Int?

    @Option(name: .customLong("bandwidth-mib-s"), help: "At most this many MiB a second on the wire (default: no limit).")
    var bandwidthMibS: Int?

    @Option(name: .customLong("timeout-s"), help: "Give up (the guest goes on here) after this many seconds (default 120).")
    var timeoutS: Int?

    func validate() throws {
        guard destination.hasPrefix("unix:") || destination.hasPrefix("tcp:") else {
            throw ValidationError("--to: expected unix:PATH or tcp:HOST:PORT")
        }
    }

    func run() throws {
        let client = UnixHTTPClient(path: apiSock)
        var fields = ["\"destination_url\": \(quoted(destination))"]
        if let downtimeMs { fields.append("\"downtime_ms\": \(downtimeMs)") }
        if let bandwidthMibS { fields.append("\"bandwidth_mib_s\": \(bandwidthMibS)") }
        if let timeoutS { fields.append("\"timeout_s\": \(timeoutS)") }
        let body = "{" + fields.joined(separator: ", ") + "}"
        final class Outcome: @unchecked Sendable {
            var response: UnixHTTPClient.Response?
            var failure: (any Error)?
            let done = DispatchSemaphore(value: 0)
        }
        let outcome = Outcome()
        Thread.detachNewThread {
            do { outcome.response = try client.request("PUT", "/migrate", body: body) } catch { outcome.failure = error }
            outcome.done.signal()
        }
        var last = ""
        while outcome.done.wait(timeout: .now() + .milliseconds(200)) == .timedOut {
            guard let progress = try? client.request("GET", "/migrate"), progress.status == 200 else { continue }
            let line = Self.line(progress.body)
            if line != last, !line.isEmpty {
                print(line)
                last = line
            }
        }
        if let failure = outcome.failure { throw ValidationError("--api-sock: \(failure)") }
        guard let response = outcome.response else { throw ExitCode(1) }
        if response.status == 204 {
            if let progress = try? client.request("GET", "/migrate"), progress.status == 200 { print(Self.line(progress.body)) }
            print("migration completed: the machine runs on \(destination)")
            return
        }
        FileHandle.standardError.write(Data("swiftvmm: migration failed (\(response.status)): \(response.body)\n".utf8))
        throw ExitCode(1)
    }

    private func quoted(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text], options: [])) ?? Data("[\"\"]".utf8)
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }

    /// GET /migrate's JSON as one line.
    static func line(_ json: String) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return "" }
        func value(_ key: String) -> String { object[key].map { "\($0)" } ?? "?" }
        var text =
            "migration \(value("phase")): round \(value("round")), \(value("pages_sent")) pages sent (+\(value("zero_pages")) zero), "
            + "\(value("bytes_sent")) bytes, dirty \(value("dirty_pages_per_second")) pages/s, "
            + "estimated downtime \(value("estimated_downtime_ms")) ms, throttle \(value("throttle_percent"))%"
        if let downtime = object["downtime_ms"] { text += ", downtime \(downtime) ms" }
        if object["memory_handed_over"] as? Bool == true { text += ", RAM handed over as a memfd" }
        return text
    }
}
