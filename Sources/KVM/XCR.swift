/// One extended control register (`struct kvm_xcr`); XCR0 selects the state
/// components XSAVE manages.
public struct XCR: Codable, Hashable, Sendable {
    public var index: UInt32
    public var value: UInt64

    public init(index: UInt32, value: UInt64) {
        self.index = index
        self.value = value
    }
}
