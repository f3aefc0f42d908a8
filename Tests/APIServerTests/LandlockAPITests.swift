import Foundation
import Sandbox
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `serve --landlock-dir DIR`: the API's threads reach only DIR (and
/// /dev/kvm, /dev/net/tun): a machine is built, logs, metrics and a snapshot
/// are written in DIR, and the same requests naming a path outside it fail
/// with the open's EACCES, leaving nothing there.
@Suite struct LandlockAPITests {
    static let sanitized = ProcessInfo.processInfo.environment.keys.contains { $0 == "ASAN_OPTIONS" || $0 == "TSAN_OPTIONS" }
    static let landlockABI = Int(Sandbox.landlockABI)
    static let reason: Comment =
        sanitized
        ? "SKIPPED: sanitized builds run without Landlock (LeakSanitizer reads /proc at exit)"
        : "SKIPPED: this kernel has no Landlock (errno \(-landlockABI))"

    @Test(.disabled(if: sanitized || landlockABI < 1, reason))
    func theAPIReachesOnlyItsDirectory() throws {
        let directory = try ScratchDirectory()
        let outside = try ScratchDirectory()
        let guest = try slowTicker(in: directory)
        let vmm = try ServedVMM(directory, extraArguments: ["--landlock-dir", directory.path])

        let deniedLog = try vmm.put("/logger", #"{"log_path": "\#(outside.file("vmm.log"))", "level": "Info"}"#)
        #expect(deniedLog.status == 400 && deniedLog.fault.contains("Permission denied"), "\(deniedLog)")
        let deniedMetrics = try vmm.put("/metrics", #"{"metrics_path": "\#(outside.file("metrics.json"))"}"#)
        #expect(deniedMetrics.status == 400 && deniedMetrics.fault.contains("Permission denied"), "\(deniedMetrics)")
        #expect(try vmm.put("/logger", #"{"log_path": "\#(directory.file("vmm.log"))", "level": "Info"}"#).status == 204)
        #expect(try vmm.put("/metrics", #"{"metrics_path": "\#(directory.file("metrics.json"))"}"#).status == 204)

        #expect(try vmm.put("/x-swiftvmm", #"{"guest": "\#(guest)", "mode": "protected"}"#).status == 204)
        let start = try vmm.put("/actions", #"{"action_type": "InstanceStart"}"#)
        #expect(start.status == 204, "a machine is built from DIR and /dev/kvm: \(start) \(vmm.stderr)")
        try vmm.waitForOutput("tick 02 ")
        #expect(try vmm.patch("/vm", #"{"state": "Paused"}"#).status == 204)
        let denied = try vmm.put(
            "/snapshot/create", #"{"snapshot_path": "\#(outside.file("s"))", "mem_file_path": "\#(outside.file("m"))"}"#)
        #expect(denied.status == 400 && denied.fault.contains("Permission denied"), "\(denied)")
        let created = try vmm.put(
            "/snapshot/create", #"{"snapshot_path": "\#(directory.file("s"))", "mem_file_path": "\#(directory.file("m"))"}"#)
        #expect(created.status == 204, "\(created)")
        vmm.kill()
        #expect(FileManager.default.fileExists(atPath: directory.file("s")) && FileManager.default.fileExists(atPath: directory.file("m")))
        #expect(FileManager.default.fileExists(atPath: directory.file("metrics.json")))
        let strays = try FileManager.default.contentsOfDirectory(atPath: outside.path)
        #expect(strays.isEmpty, "nothing was written outside: \(strays)")
    }
}
