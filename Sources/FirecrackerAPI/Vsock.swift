/// `PUT /vsock`: a virtio-vsock device, its host side a Unix socket.
public struct Vsock: StrictResource, Hashable {
    public var guestCid: Int
    public var udsPath: String
    /// Deprecated in Firecracker; accepted and ignored.
    public var vsockId: String?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case guestCid = "guest_cid"
        case udsPath = "uds_path"
        case vsockId = "vsock_id"
    }

    public func validate() throws(APIFault) {
        // 0, 1 and 2 are the hypervisor's, the local and the host's CIDs.
        try Validation.range(guestCid, 3...Int(UInt32.max), field: "guest_cid")
        try Validation.path(udsPath, field: "uds_path")
    }
}
