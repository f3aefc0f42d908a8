#if canImport(Glibc)
    import Glibc
#endif

/// What this process holds of the kernel's resources: open file descriptors
/// and mapped memory, read from `/proc/self`. Tests take one before building
/// machines and one after tearing them down, and compare.
///
/// The counts are of the whole process, so they are only exact when nothing
/// else in it opens files or maps memory meanwhile: take them from tests that
/// run one at a time (XCTest runs its tests serially, in a process of its own).
public struct ProcessResources: Hashable, Sendable, CustomStringConvertible {
    /// Open file descriptors (entries of /proc/self/fd, less the one reading it).
    public var fileDescriptors: Int
    /// The ones that are KVM's: `/dev/kvm`, VMs and vCPUs (`anon_inode:kvm-vm`, `anon_inode:kvm-vcpu:N`).
    public var kvmFileDescriptors: Int
    /// Bytes in all mappings (the sum of /proc/self/maps' ranges: `VmSize`).
    public var mappedBytes: UInt64
    /// Mappings of KVM files (each vCPU's `kvm_run` page).
    public var kvmMappings: Int

    /// The process's resources now. The allocator first gives back the free
    /// memory it keeps (`malloc_trim`), so that memory freed by the code under
    /// test is not counted as held.
    public static func current() -> ProcessResources {
        trimAllocator()
        var fds = 0
        var kvmFDs = 0
        if let directory = opendir("/proc/self/fd") {
            let own = dirfd(directory)
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard let fd = Int32(name), fd != own else { continue }
                fds += 1
                if link("/proc/self/fd/\(name)").contains("kvm") { kvmFDs += 1 }
            }
            closedir(directory)
        }
        var bytes: UInt64 = 0
        var kvmMappings = 0
        for line in text("/proc/self/maps").split(separator: "\n") {
            let range = line.prefix { $0 != " " }.split(separator: "-")
            guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16) else { continue }
            bytes += end - start
            if line.contains("kvm") { kvmMappings += 1 }
        }
        return ProcessResources(fileDescriptors: fds, kvmFileDescriptors: kvmFDs, mappedBytes: bytes, kvmMappings: kvmMappings)
    }

    /// Whether this process runs under AddressSanitizer or ThreadSanitizer,
    /// whose allocators keep freed memory in quarantine and map more as they
    /// go: mapped memory then grows by megabytes that are not a leak.
    public static let underSanitizer: Bool = ["__asan_init", "__tsan_init"].contains { (name: String) in
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) != nil
    }

    public var description: String {
        "\(fileDescriptors) fds (\(kvmFileDescriptors) KVM), \(mappedBytes >> 10) KiB mapped (\(kvmMappings) KVM mappings)"
    }

    /// glibc's `malloc_trim(0)`, found at run time: Swift's Glibc module does not import `<malloc.h>`.
    private static func trimAllocator() {
        typealias MallocTrim = @convention(c) (Int) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
    }

    private static func link(_ path: String) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { return "" }
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func text(_ path: String) -> String {
        guard let file = fopen(path, "r") else { return "" }
        defer { fclose(file) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            guard count > 0 else { break }
            result += chunk.prefix(count)
        }
        return String(decoding: result, as: UTF8.self)
    }
}
