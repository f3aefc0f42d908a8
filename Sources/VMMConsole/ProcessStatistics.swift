#if canImport(Glibc)
    import Glibc
#endif

/// Facts about the VMM process itself, for `swiftvmm run --stats` and the benchmark.
public enum ProcessStatistics {
    /// This process's peak resident set size in KiB (`VmHWM` in /proc/self/status).
    ///
    /// Unlike `getrusage`'s `ru_maxrss`, which Linux carries over from before
    /// `exec` (and so reports the parent's size after a `vfork`/`posix_spawn`),
    /// `VmHWM` covers only this program's own address space.
    public static func peakResidentSetKiB() -> Int? {
        guard let file = fopen("/proc/self/status", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix("VmHWM:") {
                return Int(text.dropFirst(6).filter(\.isNumber))
            }
        }
        return nil
    }
}
