import Devices
import VirtioDevices

/// What a snapshot keeps of a virtio device behind its transport: the
/// devices that hold state of their own beyond the queues, by kind.
public enum VirtioDeviceState: Hashable, Sendable, Codable {
    /// Nothing beyond the transport (virtio-blk, virtio-rng, virtio-console).
    case stateless
    case network(VirtioNet.State)
    case vsock(VirtioVsock.State)
    case balloon(VirtioBalloon.State)

    /// `device`'s state.
    init(of device: AnyObject) {
        switch device {
        case let net as VirtioNet: self = .network(net.state)
        case let vsock as VirtioVsock: self = .vsock(vsock.state)
        case let balloon as VirtioBalloon: self = .balloon(balloon.state)
        default: self = .stateless
        }
    }

    /// Puts the state back into `device`, which must be of the same kind.
    func restore(into device: AnyObject) throws(DeviceStateError) {
        switch (self, device) {
        case (.stateless, _): return
        case (.network(let state), let net as VirtioNet): try net.restore(state)
        case (.vsock(let state), let vsock as VirtioVsock): try vsock.restore(state)
        case (.balloon(let state), let balloon as VirtioBalloon): try balloon.restore(state)
        default:
            throw DeviceStateError(
                device: String(describing: type(of: device)), field: "virtioDevices",
                problem: .inconsistent(detail: "saved state \(self) is for another kind of device"))
        }
    }
}
