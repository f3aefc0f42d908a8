import Foundation
import HostSupport
import XCTest

@testable import Sandbox

/// Landlock's policy as plain values, and a ruleset confining a thread of
/// the test process (its domain ends with the thread).
final class LandlockTests: XCTestCase {
    func testThreadsThatOpenNoPathReachNothingAndTheOthersTheReachablePaths() {
        let session = LandlockPolicy.session(snapshotDirectory: "/tmp/snap")
        for kind in [ThreadKind.vcpu, .io, .timer, .gdb] {
            XCTAssertEqual(session.rules(for: kind), [], "\(kind)")
            XCTAssertEqual(LandlockPolicy.server.rules(for: kind), [], "serve: \(kind)")
        }
        let reachable = [
            PathRule("/proc/self/pagemap", .readFile), PathRule("/proc/self/status", .readFile), PathRule("/tmp/snap", .readWrite),
        ]
        for kind in [ThreadKind.process, .console, .api, .migration] {
            XCTAssertEqual(session.rules(for: kind), reachable, "\(kind)")
            XCTAssertNil(LandlockPolicy.server.rules(for: kind), "serve: \(kind) is not confined")
        }
        XCTAssertEqual(
            LandlockPolicy.session(snapshotDirectory: nil).reachable,
            [PathRule("/proc/self/pagemap", .readFile), PathRule("/proc/self/status", .readFile)])
    }

    func testHandledRightsFollowTheABI() {
        XCTAssertEqual(FileAccess.handled(byABI: 0), [])
        XCTAssertEqual(FileAccess.handled(byABI: 1).rawValue, 0x1FFF)
        XCTAssertEqual(FileAccess.handled(byABI: 2).rawValue, 0x3FFF)
        XCTAssertEqual(FileAccess.handled(byABI: 4).rawValue, 0x7FFF)
        XCTAssertEqual(FileAccess.handled(byABI: 7).rawValue, 0xFFFF)
        XCTAssertFalse(FileAccess.readWrite.contains(.execute))
        XCTAssertFalse(FileAccess.readWrite.contains(.refer))
    }

    /// A thread confined to one directory: reads and creates files in it,
    /// gets EACCES for a file beside it; the test's own thread is unaffected.
    func testAConfinedThreadReachesOnlyItsDirectory() throws {
        let abi = Int(Sandbox.landlockABI)
        try XCTSkipIf(abi < 1, "SKIPPED: this kernel has no Landlock (errno \(-abi))")
        let root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "landlock-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let allowed = root.appendingPathComponent("allowed").path
        try FileManager.default.createDirectory(atPath: allowed, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let outside = root.appendingPathComponent("outside").path
        XCTAssertTrue(FileManager.default.createFile(atPath: outside, contents: Data("x".utf8)))
        XCTAssertTrue(FileManager.default.createFile(atPath: allowed + "/inside", contents: Data("y".utf8)))
        let ruleset = try LandlockRuleset(rules: [PathRule(allowed, .readWrite)], abi: abi)
        defer { (ruleset.pathDescriptors + [ruleset.descriptor]).forEach { _ = close($0) } }

        let results = Results()
        let thread = try HostThread.spawn(name: "landlock test") {
            do {
                try LandlockRuleset.forbidNewPrivileges()
                try ruleset.restrictCallingThread()
            } catch {
                results.append("restrict: \(error)")
                return
            }
            func attempt(_ path: String, _ flags: Int32) -> String {
                let fd = open(path, flags | O_CLOEXEC, 0o600)
                defer { if fd >= 0 { close(fd) } }
                return fd >= 0 ? "OK" : "errno \(errno)"
            }
            results.append(attempt(allowed + "/inside", O_RDONLY))
            results.append(attempt(allowed + "/created", O_WRONLY | O_CREAT | O_TRUNC))
            results.append(attempt(outside, O_RDONLY))
            results.append(attempt(root.path + "/made", O_WRONLY | O_CREAT))
        }
        thread.join()
        XCTAssertEqual(results.all, ["OK", "OK", "errno \(EACCES)", "errno \(EACCES)"])
        let fd = open(outside, O_RDONLY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(fd, 0, "the test's own thread is not confined")
        if fd >= 0 { close(fd) }
    }

    /// A missing path is an error naming it, not a rule quietly left out.
    func testAMissingPathIsNamed() throws {
        let abi = Int(Sandbox.landlockABI)
        try XCTSkipIf(abi < 1, "SKIPPED: this kernel has no Landlock (errno \(-abi))")
        XCTAssertThrowsError(try LandlockRuleset(rules: [PathRule("/nonexistent/landlock", .read)], abi: abi)) {
            XCTAssertEqual($0 as? SandboxError, .landlockPath("/nonexistent/landlock", errno: ENOENT))
        }
    }
}

private final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var values = [String]()
    func append(_ value: String) { lock.withLock { values.append(value) } }
    var all: [String] { lock.withLock { values } }
}
