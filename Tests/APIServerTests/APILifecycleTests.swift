import Foundation
import Testing

/// The whole life of a machine through the API, from a real HTTP client on
/// the Unix socket: configure, start, watch COM1, pause, snapshot, stop; then
/// in a new process load the snapshot and resume, and the two outputs add up
/// to an uninterrupted run's.
@Suite struct APILifecycleTests {
    static let configure: [(String, String, String)] = [
        ("PUT", "/machine-config", #"{"vcpu_count": 1, "mem_size_mib": 64}"#),
        ("PUT", "/logger", #"{"level": "Info"}"#),
    ]

    @Test func aMachineLivesPausesSnapshotsAndContinuesInAnotherProcess() throws {
        let directory = try ScratchDirectory()
        let guest = try slowTicker(in: directory)
        let first = try ServedVMM(directory)
        let info = try first.get("/")
        #expect(info.status == 200)
        #expect(info.json["state"] as? String == "Not started")
        #expect(info.json["id"] as? String == "anonymous-instance")
        for (method, path, body) in Self.configure {
            #expect(try first.client.request(method, path, body).status == 204, "\(method) \(path)")
        }
        #expect(try first.put("/x-swiftvmm", #"{"guest": "\#(guest)", "mode": "protected"}"#).status == 204)
        #expect(try first.put("/actions", #"{"action_type": "InstanceStart"}"#).status == 204)
        #expect(try first.get("/").json["state"] as? String == "Running")
        try first.waitForOutput("tick 03 ")

        #expect(try first.patch("/vm", #"{"state": "Paused"}"#).status == 204)
        #expect(try first.get("/").json["state"] as? String == "Paused")
        let statePath = directory.file("vm.state")
        let memoryPath = directory.file("vm.mem")
        let created = try first.put(
            "/snapshot/create", #"{"snapshot_path": "\#(statePath)", "mem_file_path": "\#(memoryPath)", "snapshot_type": "Full"}"#)
        #expect(created.status == 204, "\(created)")
        // Paused: nothing more is printed.
        let printed = first.stdout
        usleep(200_000)
        #expect(first.stdout == printed)
        first.kill()
        let before = printed.split(separator: "\n").map(String.init)
        #expect(!before.isEmpty && before == tickerLines(1...before.count), "\(printed)")
        #expect(FileManager.default.fileExists(atPath: statePath) && FileManager.default.fileExists(atPath: memoryPath))

        let second = try ServedVMM(directory)
        let load = try second.put(
            "/snapshot/load",
            #"{"snapshot_path": "\#(statePath)", "mem_backend": {"backend_type": "File", "backend_path": "\#(memoryPath)"}}"#)
        #expect(load.status == 204, "\(load)")
        #expect(try second.get("/").json["state"] as? String == "Paused")
        usleep(100_000)
        #expect(second.stdout.isEmpty, "a loaded machine stays paused until resumed")
        #expect(try second.patch("/vm", #"{"state": "Resumed"}"#).status == 204)
        let status = try second.waitForExit()
        #expect(status == 0x30, "\(second.stderr)")
        let after = second.stdout.split(separator: "\n").map(String.init)
        #expect(before + after == tickerLines(1...24), "\(second.stdout)")
        #expect(second.stderr.contains("guest wrote 0x30 to the debug-exit port"))
    }

    @Test func resumeVmInTheLoadRequestContinuesAtOnce() throws {
        let directory = try ScratchDirectory()
        let guest = try slowTicker(in: directory)
        let first = try ServedVMM(directory)
        #expect(try first.put("/x-swiftvmm", #"{"guest": "\#(guest)", "mode": "protected"}"#).status == 204)
        #expect(try first.put("/actions", #"{"action_type": "InstanceStart"}"#).status == 204)
        try first.waitForOutput("tick 02 ")
        #expect(try first.patch("/vm", #"{"state": "Paused"}"#).status == 204)
        let state = directory.file("s")
        let memory = directory.file("m")
        #expect(try first.put("/snapshot/create", #"{"snapshot_path": "\#(state)", "mem_file_path": "\#(memory)"}"#).status == 204)
        let before = first.stdout.split(separator: "\n").map(String.init)
        first.kill()

        let second = try ServedVMM(directory)
        #expect(
            try second.put("/snapshot/load", #"{"snapshot_path": "\#(state)", "mem_file_path": "\#(memory)", "resume_vm": true}"#).status
                == 204)
        #expect(try second.waitForExit() == 0x30)
        #expect(before + second.stdout.split(separator: "\n").map(String.init) == tickerLines(1...24))
    }

    @Test func theFirecrackerNameTakesFirecrackersFlags() throws {
        let directory = try ScratchDirectory()
        let link = directory.file("firecracker")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: try swiftvmmBinary())
        let version = try ServedVMM(arguments: ["--version"], socketPath: "", executable: link, waitForSocket: false)
        #expect(try version.waitForExit() == 0)
        #expect(version.stdout.hasPrefix("Firecracker v"))

        let socket = directory.file("fc.sock")
        let served = try ServedVMM(
            arguments: ["--api-sock", socket, "--id", "vm_42", "--level", "Debug", "--seccomp-level", "0"], socketPath: socket,
            executable: link)
        let info = try served.get("/")
        #expect(info.json["id"] as? String == "vm_42")
        #expect(info.json["app_name"] as? String == "swiftvmm")
        #expect(try served.get("/version").json["firecracker_version"] as? String != nil)
    }
}

/// `Diff` snapshots: only the pages written since the last snapshot; laid
/// over the full memory file they give a machine that finishes the same.
@Suite struct APIDiffSnapshotTests {
    /// Copies every data extent of `diff` over `base` (what Firecracker's users do with a diff layer).
    static func overlay(_ diff: String, onto base: String) throws -> Int {
        let source = open(diff, O_RDONLY)
        let target = open(base, O_WRONLY)
        defer {
            close(source)
            close(target)
        }
        var offset: off_t = 0
        var copied = 0
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            // Linux's SEEK_DATA (3) and SEEK_HOLE (4), which Glibc's Swift module leaves out.
            let data = lseek(source, offset, 3)
            if data < 0 { break }
            let hole = lseek(source, data, 4)
            var position = data
            while position < hole {
                let count = pread(source, &buffer, min(buffer.count, Int(hole - position)), position)
                guard count > 0 else { break }
                _ = pwrite(target, buffer, count, position)
                position += off_t(count)
                copied += count
            }
            offset = hole
        }
        return copied
    }

    @Test func aDiffHoldsOnlyNewPagesAndCompletesTheFullSnapshot() throws {
        let directory = try ScratchDirectory()
        let guest = try slowTicker(in: directory)
        let first = try ServedVMM(directory)
        #expect(try first.put("/machine-config", #"{"vcpu_count": 1, "mem_size_mib": 64, "track_dirty_pages": true}"#).status == 204)
        #expect(try first.put("/x-swiftvmm", #"{"guest": "\#(guest)", "mode": "protected"}"#).status == 204)
        #expect(try first.put("/actions", #"{"action_type": "InstanceStart"}"#).status == 204)
        try first.waitForOutput("tick 02 ")
        #expect(try first.patch("/vm", #"{"state": "Paused"}"#).status == 204)
        let (state1, memory1) = (directory.file("full.state"), directory.file("full.mem"))
        #expect(try first.put("/snapshot/create", #"{"snapshot_path": "\#(state1)", "mem_file_path": "\#(memory1)"}"#).status == 204)
        let ticksBefore = first.stdout.split(separator: "\n").count
        #expect(try first.patch("/vm", #"{"state": "Resumed"}"#).status == 204)
        try first.waitForOutput(tickerLines((ticksBefore + 3)...(ticksBefore + 3))[0])
        #expect(try first.patch("/vm", #"{"state": "Paused"}"#).status == 204)
        let (state2, memory2) = (directory.file("diff.state"), directory.file("diff.mem"))
        let diff = try first.put(
            "/snapshot/create", #"{"snapshot_path": "\#(state2)", "mem_file_path": "\#(memory2)", "snapshot_type": "Diff"}"#)
        #expect(diff.status == 204, "\(diff)")
        let before = first.stdout.split(separator: "\n").map(String.init)
        first.kill()

        // Each tick writes its own page of the table at 0x200000, plus the stack and
        // the variables: a handful of pages, where the full image holds the guest and more.
        let scratch = directory.file("scratch.mem")
        #expect(FileManager.default.createFile(atPath: scratch, contents: nil))
        #expect(truncate(scratch, 64 << 20) == 0)
        let fullBytes = try Self.overlay(memory1, onto: scratch)
        let copied = try Self.overlay(memory2, onto: memory1)
        #expect(copied > 0 && copied <= 64 * 4096 && copied < fullBytes, "the diff held \(copied) bytes, the full image \(fullBytes)")
        let second = try ServedVMM(directory)
        let load = try second.put("/snapshot/load", #"{"snapshot_path": "\#(state2)", "mem_file_path": "\#(memory1)", "resume_vm": true}"#)
        #expect(load.status == 204, "\(load)")
        #expect(try second.waitForExit() == 0x30, "\(second.stderr)")
        #expect(before + second.stdout.split(separator: "\n").map(String.init) == tickerLines(1...24))
    }
}
