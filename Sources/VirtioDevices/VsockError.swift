/// Why a virtio-vsock device could not be made.
public enum VsockError: Error, Hashable, Sendable, CustomStringConvertible {
    /// CIDs 0-2 are the hypervisor's, the local loopback's and the host's.
    case reservedCID(UInt64)
    /// Another vsock device of this process already has the CID.
    case duplicateCID(UInt64)
    /// The host socket could not be set up.
    case socket(path: String, reason: String)

    public var description: String {
        switch self {
        case .reservedCID(let cid): return "vsock cid \(cid) is reserved (0, 1 and 2 are not guest CIDs): use 3 or more"
        case .duplicateCID(let cid): return "vsock cid \(cid) is already used by another vsock device"
        case .socket(let path, let reason): return "vsock socket \(path): \(reason)"
        }
    }
}
