import HostSupport
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Polls `condition` every millisecond until it holds or `timeout` passes;
/// returns whether it held. Blocking, for tests that watch other threads.
func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) -> Bool {
    let deadline = MonotonicDeadline.after(timeout)
    while !condition() {
        if deadline.hasPassed { return false }
        usleep(1000)
    }
    return true
}

/// A pipe whose ends are closed when it goes away.
final class TestPipe {
    let readEnd: Int32
    let writeEnd: Int32

    init() {
        var ends: [Int32] = [-1, -1]
        precondition(pipe(&ends) == 0, "pipe: errno \(errno)")
        readEnd = ends[0]
        writeEnd = ends[1]
    }

    deinit {
        close(readEnd)
        close(writeEnd)
    }

    func write(_ bytes: [UInt8]) {
        let written = bytes.withUnsafeBytes { Glibc.write(writeEnd, $0.baseAddress, $0.count) }
        precondition(written == bytes.count)
    }
}

/// A value handed between threads, under a `MonotonicCondition`.
final class Shared<Value>: @unchecked Sendable {
    private let condition = MonotonicCondition()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) -> R) -> R {
        condition.withLock {
            let result = body(&value)
            condition.broadcast()
            return result
        }
    }

    /// Waits until `predicate` holds; returns whether it did within `timeout`.
    func wait(timeout: Duration = .seconds(10), until predicate: (Value) -> Bool) -> Bool {
        let deadline = MonotonicDeadline.after(timeout)
        return condition.withLock {
            while !predicate(value) {
                if !condition.wait(until: deadline) { return predicate(value) }
            }
            return true
        }
    }

    var current: Value { withLock { $0 } }
}

/// The names of this process's threads, from /proc/self/task/*/comm.
func threadNames() -> [String] {
    guard let directory = opendir("/proc/self/task") else { return [] }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        let task = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard task.first?.isNumber == true else { continue }
        let fd = open("/proc/self/task/\(task)/comm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { continue }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { continue }
        names.append(String(decoding: buffer[0..<count], as: UTF8.self).trimmingSuffix("\n"))
    }
    return names
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}

/// How many file descriptors this process has open.
func openFileDescriptorCount() -> Int {
    guard let directory = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(directory) }
    var count = 0
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name.first?.isNumber == true { count += 1 }
    }
    // The directory's own descriptor, open while counting.
    return count - 1
}
