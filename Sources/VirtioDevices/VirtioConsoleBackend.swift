import HostSupport

/// Where a virtio console's port 0 (`hvc0`) goes on the host.
public protocol VirtioConsoleBackend: AnyObject, Sendable {
    /// The guest wrote `bytes`.
    func write(_ bytes: [UInt8])
    /// Starts watching for host input on `loop`; each chunk goes to `deliver`.
    func start(on loop: EventLoop, deliver: @escaping @Sendable ([UInt8]) -> Void)
}
