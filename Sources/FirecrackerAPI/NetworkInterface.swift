/// `PUT /network-interfaces/{iface_id}`: a virtio-net device on a host TAP.
public struct NetworkInterface: StrictResource, Hashable {
    public var ifaceId: String
    public var hostDevName: String
    public var guestMac: String?
    public var mtu: Int?
    public var rxRateLimiter: RateLimiter?
    public var txRateLimiter: RateLimiter?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case ifaceId = "iface_id"
        case hostDevName = "host_dev_name"
        case guestMac = "guest_mac"
        case mtu
        case rxRateLimiter = "rx_rate_limiter"
        case txRateLimiter = "tx_rate_limiter"
    }
    public static var nestedResources: [String: any StrictResource.Type] {
        ["rx_rate_limiter": RateLimiter.self, "tx_rate_limiter": RateLimiter.self]
    }

    public func validate() throws(APIFault) {
        try Validation.id(ifaceId, field: "iface_id")
        // IFNAMSIZ is 16 with the NUL.
        if hostDevName.isEmpty || hostDevName.utf8.count > 15 || hostDevName.contains("/") {
            throw APIFault("host_dev_name: '\(hostDevName)' is not a network interface name (1 to 15 bytes, no '/')")
        }
        if let guestMac {
            let parts = guestMac.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 6, parts.allSatisfy({ $0.count == 2 && UInt8($0, radix: 16) != nil }) else {
                throw APIFault("guest_mac: '\(guestMac)' is not a MAC address; expected six hex pairs like 06:00:ac:10:00:02")
            }
        }
        try Validation.range(mtu, 68...65535, field: "mtu")
        try rxRateLimiter?.validate()
        try txRateLimiter?.validate()
    }
}
