import Foundation
import Testing

/// Every resource's bad input and out-of-order calls: the status, the fault
/// message naming the field, and a machine unharmed by them.
@Suite struct APIFaultTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var method: String
        var path: String
        var body: String?
        var status: Int
        var fault: String
        var testDescription: String { "\(method) \(path) \(body ?? "")" }
    }

    /// Bad requests before `InstanceStart`; `GUEST` is replaced by the ticker's path.
    static let preBoot: [Case] = [
        Case(method: "GET", path: "/nope", status: 400, fault: "Invalid request method and/or path: GET /nope."),
        Case(method: "DELETE", path: "/machine-config", status: 400, fault: "Invalid request method and/or path"),
        Case(method: "PUT", path: "/machine-config", body: "{", status: 400, fault: "the body is not JSON"),
        Case(method: "PUT", path: "/machine-config", body: "", status: 400, fault: "the body is not JSON (it is empty)"),
        Case(method: "PUT", path: "/machine-config", body: "[1]", status: 400, fault: "the body must be a JSON object"),
        Case(method: "PUT", path: "/machine-config", body: #"{"vcpu_count": 1}"#, status: 400, fault: "missing field `mem_size_mib`"),
        Case(
            method: "PUT", path: "/machine-config", body: #"{"vcpu_count": true, "mem_size_mib": 64}"#, status: 400,
            fault: "invalid type for `vcpu_count`: expected an integer"),
        Case(
            method: "PUT", path: "/machine-config", body: #"{"vcpu_count": 1, "mem_size_mib": 64, "cpu": 1}"#, status: 400,
            fault: "unknown field `cpu`"),
        Case(
            method: "PUT", path: "/machine-config", body: #"{"vcpu_count": 0, "mem_size_mib": 64}"#, status: 400,
            fault: "vcpu_count: 0 is out of range; expected 1 to 32"),
        Case(
            method: "PUT", path: "/machine-config", body: #"{"vcpu_count": 1, "mem_size_mib": 64, "smt": true}"#, status: 400,
            fault: "smt: true is not supported"),
        Case(
            method: "PATCH", path: "/machine-config", body: #"{"mem_size_mib": -1}"#, status: 400, fault: "mem_size_mib: -1 is out of range"
        ),
        Case(method: "PUT", path: "/boot-source", body: #"{"boot_args": "x"}"#, status: 400, fault: "missing field `kernel_image_path`"),
        Case(
            method: "PUT", path: "/boot-source", body: #"{"kernel_image_path": "/nonexistent/vmlinux"}"#, status: 400,
            fault: "kernel_image_path: cannot open /nonexistent/vmlinux: No such file or directory"),
        Case(
            method: "PUT", path: "/boot-source", body: #"{"kernel_image_path": "GUEST", "initrd_path": "/tmp"}"#, status: 400,
            fault: "initrd_path: /tmp is not a regular file"),
        Case(method: "PUT", path: "/x-swiftvmm", body: #"{"mode": "unreal"}"#, status: 400, fault: "mode: 'unreal' is not one of"),
        Case(
            method: "PUT", path: "/drives/rootfs", body: #"{"drive_id": "rootfs", "is_root_device": true, "path_on_host": "/x"}"#,
            status: 400, fault: "path_on_host: cannot open /x: No such file or directory"),
        Case(
            method: "PUT", path: "/drives/other", body: #"{"drive_id": "rootfs", "is_root_device": true, "path_on_host": "/x"}"#,
            status: 400, fault: "drive_id: the id from the path does not match the id from the body"),
        Case(
            method: "PUT", path: "/drives/bad-id", body: #"{"drive_id": "bad-id", "is_root_device": true, "path_on_host": "/x"}"#,
            status: 400, fault: "API Resource IDs can only contain alphanumeric characters and underscores."),
        Case(
            method: "PUT", path: "/drives/d",
            body: #"{"drive_id": "d", "is_root_device": true, "path_on_host": "/x", "cache_type": "Fast"}"#,
            status: 400, fault: "cache_type: 'Fast' is not one of 'Unsafe', 'Writeback'"),
        Case(
            method: "PUT", path: "/drives/d",
            body: #"{"drive_id": "d", "is_root_device": true, "path_on_host": "/x", "rate_limiter": {"ops": {"size": 1}}}"#,
            status: 400, fault: "missing field `rate_limiter.ops.refill_time`"),
        Case(
            method: "PUT", path: "/drives/d",
            body: #"{"drive_id": "d", "is_root_device": true, "path_on_host": "/x", "rate_limiter": {"iops": {}}}"#,
            status: 400, fault: "unknown field `rate_limiter.iops`"),
        Case(
            method: "PUT", path: "/network-interfaces/eth0", body: #"{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "zz"}"#,
            status: 400, fault: "guest_mac: 'zz' is not a MAC address"),
        Case(
            method: "PUT", path: "/network-interfaces/eth0",
            body: #"{"iface_id": "eth0", "host_dev_name": "tap0", "rx_rate_limiter": {"bandwidth": {"size": 1, "refill_time": 100}}}"#,
            status: 400, fault: "network-interfaces[eth0]: rate limiters are not supported by swiftvmm"),
        Case(
            method: "PUT", path: "/vsock", body: #"{"guest_cid": 2, "uds_path": "/tmp/v.sock"}"#, status: 400,
            fault: "guest_cid: 2 is out of range"),
        Case(
            method: "PUT", path: "/entropy", body: #"{"rate_limiter": {"bandwidth": {"size": 1, "refill_time": 100}}}"#, status: 400,
            fault: "entropy.rate_limiter: rate limiters are not supported by swiftvmm"),
        Case(method: "PUT", path: "/balloon", body: #"{"amount_mib": 1}"#, status: 400, fault: "missing field `deflate_on_oom`"),
        Case(method: "GET", path: "/balloon", status: 400, fault: "No balloon device configured."),
        Case(method: "GET", path: "/balloon/statistics", status: 400, fault: "No balloon device configured."),
        Case(method: "PATCH", path: "/balloon", body: #"{"amount_mib": "x"}"#, status: 400, fault: "invalid type for `amount_mib`"),
        Case(
            method: "PUT", path: "/actions", body: #"{"action_type": "Reboot"}"#, status: 400, fault: "action_type: 'Reboot' is not one of"),
        Case(
            method: "PUT", path: "/actions", body: #"{"action_type": "FlushMetrics"}"#, status: 400,
            fault: "the metrics system is not configured"),
        Case(
            method: "PUT", path: "/actions", body: #"{"action_type": "SendCtrlAltDel"}"#, status: 400,
            fault: "not supported before starting the microVM"),
        Case(
            method: "PATCH", path: "/vm", body: #"{"state": "Paused"}"#, status: 400,
            fault: "The requested operation is not supported before starting the microVM."),
        Case(
            method: "PATCH", path: "/vm", body: #"{"state": "Stopped"}"#, status: 400,
            fault: "state: 'Stopped' is not one of 'Paused', 'Resumed'"),
        Case(
            method: "PUT", path: "/snapshot/create", body: #"{"snapshot_path": "/tmp/s", "mem_file_path": "/tmp/m"}"#, status: 400,
            fault: "not supported before starting the microVM"),
        Case(
            method: "PUT", path: "/snapshot/create", body: #"{"snapshot_path": "/tmp/s"}"#, status: 400,
            fault: "missing field `mem_file_path`"),
        Case(
            method: "PUT", path: "/snapshot/load",
            body: #"{"snapshot_path": "/nonexistent/s", "mem_backend": {"backend_type": "Uffd", "backend_path": "/x"}}"#, status: 400,
            fault: "mem_backend.backend_type: 'Uffd' is not supported"),
        Case(
            method: "PUT", path: "/snapshot/load", body: #"{"snapshot_path": "/nonexistent/s", "mem_file_path": "/nonexistent/m"}"#,
            status: 400, fault: "Load snapshot error: "),
        Case(method: "PUT", path: "/logger", body: #"{"level": "Loud"}"#, status: 400, fault: "level: 'Loud' is not one of"),
        Case(
            method: "PUT", path: "/logger", body: #"{"log_path": "/nonexistent/dir/log"}"#, status: 400,
            fault: "log_path: cannot open /nonexistent/dir/log"),
        Case(method: "PUT", path: "/metrics", body: #"{}"#, status: 400, fault: "missing field `metrics_path`"),
        Case(method: "PUT", path: "/actions", body: #"{"action_type": "InstanceStart"}"#, status: 400, fault: "boot-source: missing"),
    ]

    @Test func badRequestsAreRefusedWithAFaultNamingTheFieldAndTheMachineStillBoots() throws {
        let directory = try ScratchDirectory()
        let guest = try slowTicker(in: directory)
        let served = try ServedVMM(directory)
        for testCase in Self.preBoot {
            let body = testCase.body?.replacing("GUEST", with: guest)
            let response = try served.client.request(testCase.method, testCase.path, body)
            #expect(response.status == testCase.status, "\(testCase.testDescription): \(response)")
            #expect(response.fault.contains(testCase.fault), "\(testCase.testDescription): \(response)")
        }
        // A body over Firecracker's 51200-byte limit.
        let huge = try served.put("/boot-source", #"{"kernel_image_path": ""# + String(repeating: "a", count: 60_000) + #""}"#)
        #expect(huge.status == 413)
        #expect(huge.fault.contains("larger than the limit of 51200"))
        #expect(try served.get("/").json["state"] as? String == "Not started")
        #expect(try served.get("/machine-config").json["mem_size_mib"] as? Int == 128, "refused changes left nothing behind")

        // Unharmed: the machine boots and runs.
        #expect(try served.put("/x-swiftvmm", #"{"guest": "\#(guest)", "mode": "protected"}"#).status == 204)
        // A configured machine may no longer load a snapshot.
        let load = try served.put("/snapshot/load", #"{"snapshot_path": "/tmp/s", "mem_file_path": "/tmp/m"}"#)
        #expect(load.fault == "Loading a microVM snapshot not allowed after configuring boot-specific resources.")
        #expect(try served.put("/actions", #"{"action_type": "InstanceStart"}"#).status == 204)
        try served.waitForOutput("tick 01 ")

        // After the start: what only makes sense before it is refused as Firecracker refuses it.
        let afterStart = "The requested operation is not supported after starting the microVM."
        #expect(try served.put("/actions", #"{"action_type": "InstanceStart"}"#).fault == afterStart)
        #expect(try served.put("/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 64}"#).fault == afterStart)
        #expect(try served.put("/boot-source", #"{"kernel_image_path": "\#(guest)"}"#).fault == afterStart)
        #expect(try served.put("/metrics", #"{"metrics_path": "/tmp/m"}"#).fault == afterStart)
        let running = try served.put(
            "/snapshot/create", #"{"snapshot_path": "\#(directory.file("s"))", "mem_file_path": "\#(directory.file("m"))"}"#)
        #expect(running.status == 400 && running.fault.contains("must be paused"), "\(running)")
        #expect(!FileManager.default.fileExists(atPath: directory.file("s")))
        let diff = try served.patch("/vm", #"{"state": "Paused"}"#)
        #expect(diff.status == 204)
        let refusedDiff = try served.put(
            "/snapshot/create",
            #"{"snapshot_path": "\#(directory.file("s"))", "mem_file_path": "\#(directory.file("m"))", "snapshot_type": "Diff"}"#)
        #expect(refusedDiff.fault.contains("Diff needs dirty-page tracking"))
        let unwritable = try served.put("/snapshot/create", #"{"snapshot_path": "/nonexistent/s", "mem_file_path": "/nonexistent/m"}"#)
        #expect(unwritable.status == 400 && unwritable.fault.contains("/nonexistent/m"), "\(unwritable)")
        #expect(try served.patch("/vm", #"{"state": "Resumed"}"#).status == 204)
        #expect(try served.waitForExit() == 0x30)
        #expect(served.stdout.split(separator: "\n").map(String.init) == tickerLines(1...24))
    }

    @Test func metricsAndTheLogGoToTheirFiles() throws {
        let directory = try ScratchDirectory()
        let guest = try slowTicker(in: directory)
        let served = try ServedVMM(directory)
        let log = directory.file("log")
        let metrics = directory.file("metrics")
        #expect(try served.put("/logger", #"{"log_path": "\#(log)", "level": "Info"}"#).status == 204)
        #expect(try served.put("/metrics", #"{"metrics_path": "\#(metrics)"}"#).status == 204)
        #expect(try served.put("/x-swiftvmm", #"{"guest": "\#(guest)", "mode": "protected"}"#).status == 204)
        #expect(try served.put("/actions", #"{"action_type": "InstanceStart"}"#).status == 204)
        try served.waitForOutput("tick 02 ")
        #expect(try served.put("/actions", #"{"action_type": "FlushMetrics"}"#).status == 204)
        let text = try String(contentsOfFile: metrics, encoding: .utf8)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let vcpu = try #require(object["vcpu"] as? [String: Any])
        #expect((vcpu["exits"] as? Int ?? 0) > 10)
        #expect((vcpu["run_time_ms"] as? Int ?? -1) >= 0)
        let api = try #require(object["api_server"] as? [String: Any])
        #expect(api["requests"] as? Int == 5)
        #expect(try String(contentsOfFile: log, encoding: .utf8).contains("PUT /actions: 204"))
        served.kill()
    }
}
