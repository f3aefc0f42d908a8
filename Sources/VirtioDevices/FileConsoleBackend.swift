import HostSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A virtio console whose output goes to a file (or standard output); it
/// has no input.
public final class FileConsoleBackend: VirtioConsoleBackend, Sendable {
    private let fd: Int32
    private let owned: Bool

    /// Appends to `path`, creating it. Throws naming the file.
    public init(path: String) throws(ConsoleBackendError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .cannotOpen(path: path, errno: errno) }
        self.fd = fd
        owned = true
    }

    /// Writes to an inherited descriptor (standard output) it does not close.
    public init(descriptor: Int32) {
        fd = descriptor
        owned = false
    }

    deinit { if owned { close(fd) } }

    public func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let done = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if done < 0 && errno == EINTR { continue }
            guard done > 0 else { return }
            offset += done
        }
    }

    public func start(on loop: EventLoop, deliver: @escaping @Sendable ([UInt8]) -> Void) {}
}
