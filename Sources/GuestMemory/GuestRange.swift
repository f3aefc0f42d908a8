import VMCore

/// A run of guest-physical bytes a device reads or writes: one buffer of a
/// virtio descriptor chain, say. Checked against RAM when it is used.
public struct GuestRange: Hashable, Sendable, Codable {
    public var address: GuestAddress
    public var length: UInt64

    public init(address: GuestAddress, length: UInt64) {
        self.address = address
        self.length = length
    }
}
