/// Where a UART sends the bytes the guest transmits.
///
/// Bytes arrive unchanged and one at a time, exactly as written to THR; any
/// translation (such as LF to CRLF) is the sink's business, not the UART's.
public protocol SerialOutput: AnyObject {
    /// One transmitted byte.
    func write(_ byte: UInt8)
    /// Pushes out anything buffered. The UART never calls this (it cannot tell
    /// where a message ends); the machine does, e.g. when the VM stops.
    func flush()
}

extension SerialOutput {
    /// Unbuffered sinks have nothing to flush.
    public func flush() {}
}
