/// The kind of a virtio device, as its Device ID register reports it
/// (virtio 1.2, section 5).
public enum VirtioDeviceType: UInt32, Codable, Sendable, CaseIterable {
    case network = 1
    case block = 2
    case console = 3
    case entropy = 4
    case balloon = 5
    case vsock = 19

    /// The name Linux and the specification use for it.
    public var name: String {
        switch self {
        case .network: return "virtio-net"
        case .block: return "virtio-blk"
        case .console: return "virtio-console"
        case .entropy: return "virtio-rng"
        case .balloon: return "virtio-balloon"
        case .vsock: return "virtio-vsock"
        }
    }
}
