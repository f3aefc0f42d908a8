/// A virtio device of a machine, checked and parsed from a spec (`--disk`,
/// `--net`, `--vsock`, `--rng`, `--balloon`, `--console-device`). Plain
/// values: a snapshot carries them, and the machine opens the files, taps and
/// sockets they name when it is built.
public enum VirtioDeviceConfiguration: Hashable, Sendable, Codable {
    /// A virtio-blk disk on a raw image file.
    case block(BlockDevice)
    /// A virtio-net interface on a host tap device.
    case network(NetworkDevice)
    /// A virtio-vsock device: guest CID and the host's Unix socket.
    case vsock(VsockDevice)
    /// A virtio-rng device.
    case entropy
    /// A virtio-balloon device.
    case balloon
    /// A virtio console (`hvc0` in a Linux guest) and where it goes.
    case console(ConsoleTarget)

    /// A disk.
    public struct BlockDevice: Hashable, Sendable, Codable {
        /// The image file, as the VMM opens it.
        public var path: String
        public var readOnly: Bool
        /// Open with `O_DIRECT`, bypassing the host's page cache.
        public var direct: Bool
        /// What the guest's get-id request answers (at most 20 bytes); default: the file's name.
        public var identifier: String?

        public init(path: String, readOnly: Bool = false, direct: Bool = false, identifier: String? = nil) {
            self.path = path
            self.readOnly = readOnly
            self.direct = direct
            self.identifier = identifier
        }
    }

    /// A network interface.
    public struct NetworkDevice: Hashable, Sendable, Codable {
        /// The host tap's name.
        public var tap: String
        /// The guest's MAC address (`nil`: derived from the tap's name).
        public var mac: [UInt8]?

        public init(tap: String, mac: [UInt8]? = nil) {
            self.tap = tap
            self.mac = mac
        }
    }

    /// A vsock device.
    public struct VsockDevice: Hashable, Sendable, Codable {
        /// The guest's context ID: 3 or more (0-2 are reserved).
        public var cid: UInt32
        /// The Unix socket host programs connect to; guest-initiated
        /// connections to port P go to `socketPath_P`.
        public var socketPath: String

        public init(cid: UInt32, socketPath: String) {
            self.cid = cid
            self.socketPath = socketPath
        }
    }

    /// Where a virtio console goes.
    public enum ConsoleTarget: Hashable, Sendable, Codable {
        /// A Unix socket the VMM listens on: its client is the console.
        case socket(String)
        /// A file the guest's output is appended to (no input).
        case file(String)
    }

    /// The device's kind, as users name it in messages.
    public var kindName: String {
        switch self {
        case .block: return "virtio-blk"
        case .network: return "virtio-net"
        case .vsock: return "virtio-vsock"
        case .entropy: return "virtio-rng"
        case .balloon: return "virtio-balloon"
        case .console: return "virtio-console"
        }
    }
}
