#if canImport(Glibc)
    import Glibc
#endif

/// A Linux tap interface opened for a virtio-net back end: Ethernet frames
/// (`IFF_TAP`), no packet-information prefix (`IFF_NO_PI`), and each frame
/// preceded by virtio-net's own 12-byte header (`IFF_VNET_HDR` with
/// `TUNSETVNETHDRSZ`), so that frames move between the tap and the guest's
/// buffers unchanged, offload metadata included.
///
/// The descriptor is non-blocking and closed when the device goes.
public final class TapDevice: Sendable {
    /// The offloads a tap can pass to its reader (`TUNSETOFFLOAD`'s `TUN_F_*` bits).
    public struct Offloads: OptionSet, Hashable, Sendable, Codable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// Frames may arrive with a partial checksum (`TUN_F_CSUM`).
        public static let checksum = Offloads(rawValue: 0x01)
        public static let tcp4Segmentation = Offloads(rawValue: 0x02)
        public static let tcp6Segmentation = Offloads(rawValue: 0x04)
        public static let tcpECN = Offloads(rawValue: 0x08)
        public static let udpFragmentation = Offloads(rawValue: 0x10)
    }

    /// The interface's name.
    public let name: String
    /// The tap's descriptor (non-blocking).
    public let fileDescriptor: Int32
    /// The offloads this tap accepted when asked; the device offers the guest no others.
    public let supportedOffloads: Offloads

    /// The size of `virtio_net_hdr_v1`, the header every frame carries.
    public static let headerSize: Int32 = 12

    // <linux/if_tun.h>: _IOW('T', 202, int), _IOW('T', 208, unsigned int), _IOW('T', 216, int).
    private static let setInterface: UInt = 0x4004_54ca
    private static let setOffload: UInt = 0x4004_54d0
    private static let setHeaderSize: UInt = 0x4004_54d8
    private static let flags: Int16 = 0x0002 | 0x1000 | 0x4000  // IFF_TAP | IFF_NO_PI | IFF_VNET_HDR

    /// Opens (or creates, with CAP_NET_ADMIN) the tap `name` and finds out
    /// which offloads it accepts, leaving them all off until a driver asks.
    public init(name: String) throws(TapError) {
        // IFNAMSIZ is 16 with the terminating zero.
        guard !name.isEmpty, name.utf8.count < 16, !name.contains("/"), !name.contains(" ") else {
            throw TapError(name: name, operation: "interface names are 1 to 15 characters, without '/' or spaces", errno: 0)
        }
        let fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw TapError(name: name, operation: "open /dev/net/tun", errno: errno) }
        // struct ifreq: the name, then ifr_flags (a short) at offset 16, 40 bytes in all.
        var request = [UInt8](repeating: 0, count: 40)
        request.replaceSubrange(0..<name.utf8.count, with: name.utf8)
        request[16] = UInt8(truncatingIfNeeded: Self.flags)
        request[17] = UInt8(truncatingIfNeeded: Self.flags >> 8)
        let set = request.withUnsafeMutableBytes { bytes in bytes.baseAddress.map { ioctl(fd, Self.setInterface, $0) } ?? -1 }
        guard set == 0 else {
            let error = errno
            close(fd)
            throw TapError(name: name, operation: "TUNSETIFF", errno: error)
        }
        var headerSize = Self.headerSize
        guard ioctl(fd, Self.setHeaderSize, &headerSize) == 0 else {
            let error = errno
            close(fd)
            throw TapError(name: name, operation: "TUNSETVNETHDRSZ", errno: error)
        }
        // Older kernels refuse some bits (UFO was gone from 4.14 to 4.16): the largest set accepted wins.
        let candidates: [Offloads] = [
            [.checksum, .tcp4Segmentation, .tcp6Segmentation, .tcpECN, .udpFragmentation],
            [.checksum, .tcp4Segmentation, .tcp6Segmentation, .tcpECN],
            [.checksum, .tcp4Segmentation, .tcp6Segmentation],
            [.checksum],
        ]
        var supported: Offloads = []
        for candidate in candidates where ioctl(fd, Self.setOffload, CInt(bitPattern: candidate.rawValue)) == 0 {
            supported = candidate
            break
        }
        _ = ioctl(fd, Self.setOffload, CInt(0))
        self.name = name
        fileDescriptor = fd
        supportedOffloads = supported
    }

    deinit { close(fileDescriptor) }

    /// Tells the tap which offloads the guest's driver accepted: the tap
    /// then hands the VMM frames with partial checksums or large segments.
    public func setOffloads(_ offloads: Offloads) throws(TapError) {
        guard ioctl(fileDescriptor, Self.setOffload, CInt(bitPattern: offloads.rawValue)) == 0 else {
            throw TapError(name: name, operation: "TUNSETOFFLOAD", errno: errno)
        }
    }
}
