/// The device status register's bits (virtio 1.2, section 2.1): the driver
/// sets them in order as it brings the device up; the device sets
/// `needsReset` when it can no longer go on.
public struct VirtioStatus: OptionSet, Hashable, Sendable, Codable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let acknowledge = VirtioStatus(rawValue: 1)
    public static let driver = VirtioStatus(rawValue: 2)
    public static let driverOK = VirtioStatus(rawValue: 4)
    public static let featuresOK = VirtioStatus(rawValue: 8)
    public static let needsReset = VirtioStatus(rawValue: 0x40)
    public static let failed = VirtioStatus(rawValue: 0x80)
}
