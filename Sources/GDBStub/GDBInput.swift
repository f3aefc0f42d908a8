/// One thing a debugger sent, as `GDBPacketDecoder` finds it in the byte stream.
public enum GDBInput: Equatable, Sendable {
    /// A packet with a correct checksum: its payload, with escapes and
    /// run-length encoding undone.
    case packet([UInt8])
    /// A packet whose checksum did not match (the stub answers `-`).
    case badChecksum
    /// A packet longer than the decoder's limit, dropped (the stub answers `-`).
    case oversized
    /// `+`: the last packet arrived.
    case acknowledged
    /// `-`: the last packet must be sent again.
    case retransmitRequested
    /// `\x03` outside a packet: Ctrl-C, stop the target.
    case interrupt
}
