#if canImport(Glibc)
    import Glibc
#endif

/// One stream between a host Unix socket and a guest vsock port, with the
/// credit counts of both sides (virtio 1.2, 5.10.6.3). Only touched with
/// the device's transport lock held.
final class VsockConnection {
    enum Phase {
        /// A host client connected and has not yet sent its `CONNECT <port>` line.
        case awaitingConnectLine
        /// A REQUEST went to the guest; its RESPONSE is awaited.
        case connecting
        /// Bytes flow both ways.
        case established
    }

    let id: UInt64
    /// The host socket (non-blocking), closed by `close()`.
    private(set) var fileDescriptor: Int32
    var phase: Phase
    /// The guest's port and the host's, once known.
    var guestPort: UInt32 = 0
    var hostPort: UInt32 = 0

    /// Bytes sent to the guest, and the guest's buffer and consumed count.
    var sentToGuest: UInt32 = 0
    var guestBufferAllocation: UInt32 = 0
    var guestForwardCount: UInt32 = 0
    /// Bytes from the guest written to the host socket, and the count last told to the guest.
    var forwardCount: UInt32 = 0
    var reportedForwardCount: UInt32 = 0
    /// Bytes for the host socket it has not taken yet.
    var pendingToHost: [UInt8] = []
    /// How many bytes at the front of `pendingToHost` are the device's own
    /// (the `OK` line), not the guest's, so not counted as forwarded.
    var ownBytesPending = 0
    /// The guest will send no more (it shut down sending): shut the host's side once flushed.
    var guestDoneSending = false
    /// The host side ended (EOF or hang-up).
    var hostClosed = false
    /// What the event loop watches the socket for now.
    var interest: UInt32 = 0

    init(id: UInt64, fileDescriptor: Int32, phase: Phase) {
        self.id = id
        self.fileDescriptor = fileDescriptor
        self.phase = phase
    }

    /// How many more bytes the guest can take (its buffer less what is in flight).
    var guestCredit: UInt32 {
        let inFlight = sentToGuest &- guestForwardCount
        return guestBufferAllocation > inFlight ? guestBufferAllocation - inFlight : 0
    }

    func close() {
        if fileDescriptor >= 0 { _ = Glibc.close(fileDescriptor) }
        fileDescriptor = -1
    }

    deinit { close() }
}
