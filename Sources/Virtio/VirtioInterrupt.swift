import HostSupport

/// How a device's interrupt reaches the guest: on a PC, an eventfd that KVM
/// turns into an edge on an IOAPIC pin (irqfd), from any thread.
public protocol VirtioInterrupt: AnyObject, Sendable {
    /// Raises the interrupt once.
    func trigger()
}

extension EventNotifier: VirtioInterrupt {
    public func trigger() { signal() }
}
