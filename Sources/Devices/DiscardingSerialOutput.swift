/// A `SerialOutput` that drops every byte: a UART that is present (guests
/// probe for it and may print to it) but connected to nothing, like QEMU's
/// `-serial null`.
public final class DiscardingSerialOutput: SerialOutput {
    public init() {}

    public func write(_ byte: UInt8) {}
}
