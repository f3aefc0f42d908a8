#if canImport(Glibc)
    import Glibc
#endif

/// Every thread's capability sets, read from `/proc/self/task/*/status`:
/// capabilities are per thread, so the process's own `status` (its main
/// thread's) says nothing about the others.
enum ThreadCapabilities {
    /// The capability fields `status` shows for each thread.
    static let fields = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]

    /// For each thread (`tid (name)`), its capability fields and their values;
    /// empty where `/proc` is out of reach (`--chroot`).
    static func everyThread() -> [(thread: String, fields: [String: UInt64])] {
        guard let directory = opendir("/proc/self/task") else { return [] }
        defer { closedir(directory) }
        var threads = [(thread: String, fields: [String: UInt64])]()
        while let entry = readdir(directory) {
            let tid = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard !tid.isEmpty, tid.allSatisfy(\.isNumber), let status = contents(of: "/proc/self/task/\(tid)/status") else { continue }
            if isUserWorker(stat: contents(of: "/proc/self/task/\(tid)/stat")) { continue }
            var name = ""
            var values = [String: UInt64]()
            for line in status.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2 else { continue }
                let key = String(parts[0])
                let value = parts[1].trimmingCharacters(in: " \t")
                if key == "Name" { name = value }
                if fields.contains(key) { values[key] = UInt64(value, radix: 16) }
            }
            threads.append(("\(tid) (\(name))", values))
        }
        return threads
    }

    /// Whether `stat` is a kernel worker's that the kernel counts among the
    /// process's threads (`PF_USER_WORKER`: KVM's `kvm-nx-lpage-recovery`,
    /// created with the credentials of the thread that first ran a vCPU,
    /// which may be the main thread before it dropped them, as `restore`'s
    /// is). It runs kernel code only, never the process's, so its
    /// capabilities are nothing a compromised VMM could use.
    static func isUserWorker(stat: String?) -> Bool {
        // The flags are the 9th field; the 2nd, the name in parentheses, may hold spaces.
        guard let stat, let end = stat.lastIndex(of: ")") else { return false }
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        guard fields.count > 6, let flags = UInt64(fields[6]) else { return false }
        return flags & 0x4000 != 0  // PF_USER_WORKER
    }

    private static func contents(of path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            bytes.append(contentsOf: buffer[..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}
