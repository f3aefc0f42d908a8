/// One model-specific register and its value, as saved with a vCPU. A list of
/// these keeps the order the MSRs were read in, which is the order they are
/// written back.
public struct MSREntry: Codable, Hashable, Sendable {
    public var index: UInt32
    public var value: UInt64

    public init(index: UInt32, value: UInt64) {
        self.index = index
        self.value = value
    }
}
