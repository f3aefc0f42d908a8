/// Feature bits, offered by a device and accepted by its driver (virtio 1.2,
/// section 6 for the transport-independent ones; each device adds its own
/// below bit 24).
public struct VirtioFeatures: OptionSet, Hashable, Sendable, Codable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The feature with bit number `bit`.
    public init(bit: Int) { self.init(rawValue: 1 << UInt64(bit)) }

    /// Descriptors may point at a table of further descriptors.
    public static let indirectDescriptors = VirtioFeatures(bit: 28)
    /// The used- and available-event fields suppress notifications.
    public static let eventIndex = VirtioFeatures(bit: 29)
    /// The modern interface; swiftvmm offers no legacy one, so a driver must accept it.
    public static let version1 = VirtioFeatures(bit: 32)

    /// What every swiftvmm device offers on top of its own features.
    public static let transport: VirtioFeatures = [.indirectDescriptors, .eventIndex, .version1]
}
