/// Bytes waiting to be typed into the guest's serial port: the input side of
/// a serial console, as `SerialOutput` is the output side.
public protocol SerialInputSource: AnyObject {
    /// Whether bytes are waiting; asked often, so it must be cheap.
    var hasPendingInput: Bool { get }
    /// Takes up to `max` bytes, oldest first, without waiting.
    func takeInput(max: Int) -> [UInt8]
}
