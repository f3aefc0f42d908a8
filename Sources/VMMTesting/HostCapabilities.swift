#if canImport(Glibc)
    import Glibc
#endif

/// What the host's KVM can do, for tests that need more than the basics.
public enum HostCapabilities {
    /// Whether the CPU shows hardware virtualization (VT-x `vmx` or AMD-V `svm`
    /// in /proc/cpuinfo). Without it (KVM's PVM back end, say), guest kernel
    /// code is emulated instruction by instruction and some instructions not
    /// at all, so a full Linux boot cannot finish.
    public static let hasHardwareVirtualization: Bool = {
        guard let file = fopen("/proc/cpuinfo", "r") else { return false }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 8192)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard text.hasPrefix("flags") else { continue }
            let flags = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
            return flags.contains("vmx") || flags.contains("svm")
        }
        return false
    }()

    /// The reason printed with a test that needs hardware virtualization and is skipped.
    public static let noHardwareVirtualizationReason =
        "SKIPPED: this host's CPU shows no vmx/svm (e.g. KVM's PVM back end): guest kernel code is emulated and a full Linux boot cannot finish here"
}
