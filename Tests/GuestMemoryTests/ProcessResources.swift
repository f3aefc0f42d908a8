#if canImport(Glibc)
    import Glibc
#endif

/// What this process holds, as `/proc/self` tells it.
enum ProcessResources {
    /// The number of open file descriptors (entries of /proc/self/fd).
    static func openDescriptors() -> Int { descriptorTargets().count }

    /// What each open file descriptor refers to (the links in /proc/self/fd),
    /// such as `/memfd:NAME (deleted)` or a file's path.
    static func descriptorTargets() -> [String] {
        guard let directory = opendir("/proc/self/fd") else { return [] }
        defer { closedir(directory) }
        var targets: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name == "." || name == ".." { continue }
            var target = [CChar](repeating: 0, count: 4096)
            let length = readlink("/proc/self/fd/" + name, &target, target.count)
            targets.append(String(decoding: target.prefix(max(0, length)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return targets
    }

    /// Whether this process runs under ThreadSanitizer, which maps shadow
    /// memory as threads and allocations come and go: the count of mappings
    /// then moves by more than any test here could attribute.
    static let underThreadSanitizer = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") != nil

    /// The lines of /proc/self/maps.
    static func mapLines() -> [Substring] {
        contents(of: "/proc/self/maps").split(separator: "\n")
    }

    /// The `VmFlags` of the mapping that contains `address`, from /proc/self/smaps.
    /// (The kernel merges adjacent mappings with equal flags, so a region's
    /// mapping need not start at the region.)
    static func mappingFlags(at address: UInt) -> [Substring] {
        var inMapping = false
        for line in contents(of: "/proc/self/smaps").split(separator: "\n") {
            let range = line.prefix { $0 != " " }.split(separator: "-")
            if range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16) {
                inMapping = start <= address && address < end
            } else if inMapping, line.hasPrefix("VmFlags:") {
                return line.dropFirst("VmFlags:".count).split(separator: " ")
            }
        }
        return []
    }

    private static func contents(of path: String) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if got <= 0 { break }
            bytes += chunk.prefix(got)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
