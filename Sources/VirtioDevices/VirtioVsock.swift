import Devices
import GuestMemory
import HostSupport
import VMCore
import Virtio

#if canImport(Glibc)
    import Glibc
#endif

/// virtio-vsock (virtio 1.2, section 5.10), hybrid as Firecracker and Cloud
/// Hypervisor do it: the guest's stream sockets meet host programs through
/// Unix sockets rather than the host kernel's vsock.
///
/// - A host program connects to the Unix socket at `socketPath` and writes
///   `CONNECT <port>\n`; the device asks the guest for a connection to that
///   port (from a host port it picks), and once the guest accepts, answers
///   `OK <host port>\n`; from then on the bytes flow both ways.
/// - A guest connection to CID 2 (the host) port P goes to the Unix socket
///   at `socketPath_P`.
///
/// Queues rx (0), tx (1) and event (2); the configuration is the guest's
/// CID. Streams only (`VIRTIO_VSOCK_TYPE_STREAM`), with the specification's
/// credit-based flow control both ways: the device never sends the guest
/// more than it has room for, and buffers at most `bufferSize` bytes per
/// connection for a slow host program (a guest that sends more than that is
/// reset).
///
/// Connections are not part of a snapshot: after a restore the device sends
/// the guest the transport-reset event, and the guest's sockets see their
/// connections reset, as Firecracker does.
public final class VirtioVsock: VirtioDevice, @unchecked Sendable {
    // Unchecked: everything here is only touched in `VirtioDevice` calls or in
    // `link.perform` (event-loop handlers go through it), which the transport
    // serialises with its lock; `cid` and the listener never change.

    static let receiveQueue = 0
    static let transmitQueue = 1
    static let eventQueue = 2
    static let queueSize: UInt16 = 256
    /// What the device offers each connection's guest side: its receive buffer for host-bound bytes.
    public static let bufferSize: UInt32 = 256 * 1024
    /// The most payload one packet to the guest carries (Linux's receive buffers are 4 KiB, or 64 KiB).
    static let maximumPayload: UInt64 = 64 * 1024
    /// The first port the device picks for host-initiated connections (as Firecracker does).
    static let firstHostPort: UInt32 = 1 << 30
    /// How many connections the device keeps at most; more host clients are refused.
    static let maximumConnections = 1024
    /// How long a host client's connection may wait for the guest's answer (Firecracker's figure).
    static let connectTimeout: Duration = .seconds(2)
    /// Packets moved per host event before the loop serves others.
    static let batch = 32

    /// The CIDs in use by vsock devices of this process.
    private static let cidsInUse = ThreadLock<Set<UInt64>>([])

    public var type: VirtioDeviceType { .vsock }
    public let queueSizes: [UInt16] = [queueSize, queueSize, queueSize]
    public var features: VirtioFeatures { [] }
    /// The guest's context ID.
    public let cid: UInt64
    /// Where host programs connect; guest connections to port P go to `socketPath_P`.
    public let socketPath: String
    private let listener: Int32

    private var link: VirtioDeviceLink?
    private var listening = false
    private var connections: [UInt64: VsockConnection] = [:]
    /// Established and connecting connections by (guest port, host port).
    private var byPorts: [UInt64: UInt64] = [:]
    private var nextID: UInt64 = 0
    private var nextHostPort = firstHostPort
    /// Packets for the guest without payload (responses, resets, credit
    /// updates, requests), sent before any data as rx buffers allow.
    private var control: [VsockPacketHeader] = []
    /// An rx chain taken from the ring and not yet filled.
    private var heldReceive: DescriptorChain?
    /// The guest had no rx buffers last time: host sockets are not read until it adds some.
    private var receiveStarved = false
    /// After a restore: the guest's connections are gone, tell it.
    private var transportResetPending = false
    /// Guest packets dropped: wrong CIDs, unknown connections, types.
    public private(set) var droppedPackets: UInt64 = 0

    /// A device for guest CID `cid` (3 or more, unique in this process),
    /// listening at `socketPath` (a stale socket file there is replaced).
    public init(cid: UInt64, socketPath: String) throws(VsockError) {
        guard cid >= 3, cid <= UInt64(UInt32.max) - 1 else { throw .reservedCID(cid) }
        let claimed = Self.cidsInUse.withLock { $0.insert(cid).inserted }
        guard claimed else { throw .duplicateCID(cid) }
        do {
            listener = try UnixSocket.listen(path: socketPath, backlog: 64)
        } catch {
            _ = Self.cidsInUse.withLock { $0.remove(cid) }
            throw .socket(path: socketPath, reason: "\(error.operation) failed: \(String(cString: strerror(error.errno)))")
        }
        self.cid = cid
        self.socketPath = socketPath
    }

    deinit {
        _ = Self.cidsInUse.withLock { $0.remove(cid) }
        Glibc.close(listener)
        unlink(socketPath)
    }

    /// The number of open connections, for tests and reports.
    public var connectionCount: Int {
        var count = 0
        link?.perform { _ in count = connections.count }
        return count
    }

    // MARK: VirtioDevice

    /// `guest_cid`, 64-bit little-endian.
    public var configuration: [UInt8] { LittleEndian.bytes(cid) }

    public func activate(_ queues: VirtioQueueSet, link: VirtioDeviceLink) throws(VirtqueueError) {
        guard queues.isReady(Self.receiveQueue), queues.isReady(Self.transmitQueue), queues.isReady(Self.eventQueue) else {
            throw .malformedRequest(detail: "virtio-vsock needs its rx, tx and event queues")
        }
        self.link = link
        if transportResetPending {
            transportResetPending = false
            try sendTransportReset(queues)
        }
        if let loop = link.eventLoop, !listening {
            do {
                try loop.register(fd: listener, events: .readable) { [weak self] _ in
                    link.perform { queues throws(VirtqueueError) in try self?.acceptClients(queues) }
                }
                listening = true
            } catch {}
        }
    }

    public func process(queue: Int, in queues: VirtioQueueSet) throws(VirtqueueError) {
        switch queue {
        case Self.transmitQueue:
            try transmit(queues)
            try deliver(queues)
        case Self.receiveQueue:
            // New buffers: what waited for them can go now.
            receiveStarved = false
            try deliver(queues)
            for connection in connections.values { updateInterest(connection) }
        default:
            // The event queue's buffers wait for an event; nothing to do on their arrival.
            return
        }
    }

    public func reset() {
        if listening, let loop = link?.eventLoop { try? loop.unregister(fd: listener) }
        listening = false
        for connection in connections.values { drop(connection) }
        connections = [:]
        byPorts = [:]
        control = []
        heldReceive = nil
        receiveStarved = false
        link = nil
    }

    // MARK: The guest's packets

    private static func key(guestPort: UInt32, hostPort: UInt32) -> UInt64 { UInt64(guestPort) << 32 | UInt64(hostPort) }

    private func transmit(_ queues: VirtioQueueSet) throws(VirtqueueError) {
        while let chain = try queues.pop(Self.transmitQueue) {
            guard chain.readableLength >= UInt64(VsockPacketHeader.size) else {
                throw .malformedRequest(detail: "vsock packet of \(chain.readableLength) bytes (a 44-byte header is needed)")
            }
            let header: VsockPacketHeader
            do { header = VsockPacketHeader(bytes: try chain.readable.read(count: VsockPacketHeader.size, from: queues.memory)) } catch {
                throw .memory(error)
            }
            let payloadLength = UInt64(header.length)
            guard payloadLength <= chain.readableLength - UInt64(VsockPacketHeader.size), payloadLength <= Self.maximumPayload else {
                throw .malformedRequest(
                    detail: "vsock packet says \(header.length) payload bytes, its buffers hold \(chain.readableLength - 44)")
            }
            let payload = chain.readable.slice(skipping: UInt64(VsockPacketHeader.size), limit: payloadLength)
            try handle(header, payload: payload, memory: queues.memory)
            try queues.push(Self.transmitQueue, head: chain.head, written: 0)
        }
        try queues.notify(Self.transmitQueue)
    }

    private func handle(_ header: VsockPacketHeader, payload: [GuestRange], memory: GuestMemoryView) throws(VirtqueueError) {
        // Only packets from this guest to the host; a guest cannot reach other guests here.
        guard header.sourceCID == cid, header.destinationCID == VsockPacketHeader.hostCID else {
            droppedPackets += 1
            return
        }
        let operation = VsockPacketHeader.Operation(rawValue: header.operation) ?? .invalid
        guard header.type == VsockPacketHeader.streamType, operation != .invalid else {
            if operation != .reset { reply(.reset, to: header) }
            droppedPackets += 1
            return
        }
        let key = Self.key(guestPort: header.sourcePort, hostPort: header.destinationPort)
        let connection = byPorts[key].flatMap { connections[$0] }
        if operation == .request {
            guard connection == nil else {
                reply(.reset, to: header)
                return
            }
            connectToHost(header)
            return
        }
        guard let connection else {
            if operation != .reset { reply(.reset, to: header) }
            droppedPackets += 1
            return
        }
        connection.guestBufferAllocation = header.bufferAllocation
        connection.guestForwardCount = header.forwardCount
        switch operation {
        case .response:
            guard connection.phase == .connecting else {
                close(connection, resetGuest: true)
                return
            }
            connection.phase = .established
            let line = Array("OK \(connection.hostPort)\n".utf8)
            connection.pendingToHost += line
            connection.ownBytesPending += line.count
            flushToHost(connection)
        case .readWrite:
            guard connection.phase == .established, !connection.guestDoneSending else {
                close(connection, resetGuest: true)
                return
            }
            forward(payload, length: Int(header.length), to: connection, memory: memory)
        case .shutdown:
            if header.flags & VsockPacketHeader.shutdownSend != 0 { connection.guestDoneSending = true }
            if header.flags & (VsockPacketHeader.shutdownSend | VsockPacketHeader.shutdownReceive)
                == VsockPacketHeader.shutdownSend | VsockPacketHeader.shutdownReceive
            {
                // A full shutdown: the guest expects a reset to end it.
                flushToHost(connection)
                close(connection, resetGuest: true)
                return
            }
            flushToHost(connection)
        case .reset:
            flushToHost(connection)
            close(connection, resetGuest: false)
            return
        case .creditRequest:
            sendCreditUpdate(connection)
        case .creditUpdate, .request, .invalid:
            break
        }
        if connections[connection.id] != nil { updateInterest(connection) }
    }

    /// A guest connection to host port P: the Unix socket `socketPath_P`.
    /// Connected without blocking: a host program that does not accept (its
    /// backlog full) refuses the guest instead of stalling the I/O thread.
    private func connectToHost(_ header: VsockPacketHeader) {
        guard connections.count < Self.maximumConnections,
            let fd = try? UnixSocket.connect(path: "\(socketPath)_\(header.destinationPort)", nonBlocking: true)
        else {
            reply(.reset, to: header)
            return
        }
        let connection = VsockConnection(id: nextID, fileDescriptor: fd, phase: .established)
        nextID += 1
        connection.guestPort = header.sourcePort
        connection.hostPort = header.destinationPort
        connection.guestBufferAllocation = header.bufferAllocation
        connection.guestForwardCount = header.forwardCount
        connections[connection.id] = connection
        byPorts[Self.key(guestPort: connection.guestPort, hostPort: connection.hostPort)] = connection.id
        control.append(packet(.response, for: connection))
        updateInterest(connection)
    }

    /// Guest bytes to the host socket: straight from guest RAM when nothing
    /// waits, the rest kept (within the credit the device granted).
    private func forward(_ payload: [GuestRange], length: Int, to connection: VsockConnection, memory: GuestMemoryView) {
        guard length > 0 else { return }
        var written = 0
        if connection.pendingToHost.isEmpty {
            do { written = try memory.send(to: connection.fileDescriptor, from: payload) } catch {
                guard case .hostIOFailed(_, let code) = error, code == EAGAIN || code == EWOULDBLOCK else {
                    close(connection, resetGuest: true)
                    return
                }
            }
        }
        if written < length {
            guard connection.pendingToHost.count + (length - written) <= Int(Self.bufferSize) else {
                // More than the credit the device gave: a broken guest.
                close(connection, resetGuest: true)
                return
            }
            guard let rest = try? payload.slice(skipping: UInt64(written)).read(count: length - written, from: memory) else {
                close(connection, resetGuest: true)
                return
            }
            connection.pendingToHost += rest
        }
        connection.forwardCount &+= UInt32(written)
        maybeSendCreditUpdate(connection)
    }

    /// Writes what waits for the host socket; shuts its sending side when the guest is done.
    private func flushToHost(_ connection: VsockConnection) {
        if !connection.pendingToHost.isEmpty {
            let count = connection.pendingToHost.withUnsafeBytes {
                send(connection.fileDescriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if count < 0, errno != EAGAIN, errno != EWOULDBLOCK {
                close(connection, resetGuest: true)
                return
            }
            if count > 0 {
                connection.pendingToHost.removeFirst(count)
                let own = min(count, connection.ownBytesPending)
                connection.ownBytesPending -= own
                connection.forwardCount &+= UInt32(count - own)
            }
        }
        if connection.pendingToHost.isEmpty, connection.guestDoneSending { _ = shutdown(connection.fileDescriptor, Int32(SHUT_WR)) }
        maybeSendCreditUpdate(connection)
    }

    /// Tells the guest about freed buffer space once half the buffer is free again.
    private func maybeSendCreditUpdate(_ connection: VsockConnection) {
        if connection.forwardCount &- connection.reportedForwardCount >= Self.bufferSize / 2 { sendCreditUpdate(connection) }
    }

    private func sendCreditUpdate(_ connection: VsockConnection) {
        control.append(packet(.creditUpdate, for: connection))
    }

    // MARK: Host clients

    private func acceptClients(_ queues: VirtioQueueSet) throws(VirtqueueError) {
        while let fd = UnixSocket.accept(listener) {
            guard connections.count < Self.maximumConnections else {
                Glibc.close(fd)
                continue
            }
            let connection = VsockConnection(id: nextID, fileDescriptor: fd, phase: .awaitingConnectLine)
            nextID += 1
            connections[connection.id] = connection
            updateInterest(connection)
        }
    }

    /// A host socket is ready: its `CONNECT` line, data for the guest, room for the guest's bytes, or its end.
    private func hostEvent(_ id: UInt64, _ events: EventLoop.Events, _ queues: VirtioQueueSet) throws(VirtqueueError) {
        guard let connection = connections[id] else { return }
        if events.contains(.writable) { flushToHost(connection) }
        guard connections[id] != nil else { return }
        switch connection.phase {
        case .awaitingConnectLine:
            readConnectLine(connection)
        case .connecting:
            break
        case .established:
            try deliver(queues, from: connection)
        }
        guard connections[id] != nil else { return }
        if events.contains(.hangUp) || events.contains(.error), connection.interest & EventLoop.Events.readable.rawValue == 0,
            !connection.hostClosed
        {
            // Nothing is read from it now, so the hang-up would wake the loop again and again: end it.
            if connection.phase == .established { hostEnded(connection, fully: true) } else { close(connection, resetGuest: true) }
        }
        try deliver(queues)
        if connections[id] != nil { updateInterest(connection) }
    }

    /// `CONNECT <port>\n`, read without taking any byte after the newline.
    private func readConnectLine(_ connection: VsockConnection) {
        var buffer = [UInt8](repeating: 0, count: 32)
        let peeked = buffer.withUnsafeMutableBytes { recv(connection.fileDescriptor, $0.baseAddress, $0.count, Int32(MSG_PEEK)) }
        if peeked < 0, errno == EAGAIN || errno == EWOULDBLOCK { return }
        guard peeked > 0 else {
            close(connection, resetGuest: false)
            return
        }
        guard let newline = buffer[0..<peeked].firstIndex(of: UInt8(ascii: "\n")) else {
            if peeked == buffer.count { close(connection, resetGuest: false) }
            return
        }
        _ = buffer.withUnsafeMutableBytes { recv(connection.fileDescriptor, $0.baseAddress, newline + 1, 0) }
        let line = String(decoding: buffer[0..<newline], as: UTF8.self).trimmingSuffix("\r")
        let words = line.split(separator: " ")
        guard words.count == 2, words[0] == "CONNECT", let port = UInt32(words[1]) else {
            _ = Array("ERROR expected CONNECT <port>\n".utf8).withUnsafeBytes {
                send(connection.fileDescriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            close(connection, resetGuest: false)
            return
        }
        connection.guestPort = port
        connection.hostPort = pickHostPort(guestPort: port)
        connection.phase = .connecting
        byPorts[Self.key(guestPort: port, hostPort: connection.hostPort)] = connection.id
        control.append(packet(.request, for: connection))
        // A guest that never answers must not keep the host client waiting forever.
        if let link, let loop = link.eventLoop {
            let id = connection.id
            try? loop.schedule(after: Self.connectTimeout) { [weak self] in
                link.perform { queues throws(VirtqueueError) in try self?.expireConnect(id, queues) }
            }
        }
    }

    /// The guest did not answer a host client's request in time: the client's socket closes.
    private func expireConnect(_ id: UInt64, _ queues: VirtioQueueSet) throws(VirtqueueError) {
        guard let connection = connections[id], connection.phase == .connecting else { return }
        close(connection, resetGuest: true)
        try deliver(queues)
    }

    private func pickHostPort(guestPort: UInt32) -> UInt32 {
        while true {
            let port = nextHostPort
            nextHostPort = nextHostPort == UInt32.max ? Self.firstHostPort : nextHostPort + 1
            if byPorts[Self.key(guestPort: guestPort, hostPort: port)] == nil { return port }
        }
    }

    // MARK: Packets to the guest

    private func packet(_ operation: VsockPacketHeader.Operation, for connection: VsockConnection) -> VsockPacketHeader {
        var header = VsockPacketHeader()
        header.sourceCID = VsockPacketHeader.hostCID
        header.destinationCID = cid
        header.sourcePort = connection.hostPort
        header.destinationPort = connection.guestPort
        header.operation = operation.rawValue
        header.bufferAllocation = Self.bufferSize
        header.forwardCount = connection.forwardCount
        if operation == .shutdown { header.flags = VsockPacketHeader.shutdownSend | VsockPacketHeader.shutdownReceive }
        return header
    }

    /// An answer (a reset) to a guest packet with no connection behind it.
    private func reply(_ operation: VsockPacketHeader.Operation, to header: VsockPacketHeader) {
        var answer = VsockPacketHeader()
        answer.sourceCID = VsockPacketHeader.hostCID
        answer.destinationCID = header.sourceCID
        answer.sourcePort = header.destinationPort
        answer.destinationPort = header.sourcePort
        answer.operation = operation.rawValue
        control.append(answer)
    }

    /// The next rx chain, or `nil` (and reading from host sockets paused) when the guest has none.
    private func nextReceiveChain(_ queues: VirtioQueueSet) throws(VirtqueueError) -> DescriptorChain? {
        if let heldReceive { return heldReceive }
        guard let chain = try queues.pop(Self.receiveQueue) else {
            if !receiveStarved {
                receiveStarved = true
                for connection in connections.values { updateInterest(connection) }
            }
            return nil
        }
        guard chain.writableLength >= UInt64(VsockPacketHeader.size) else {
            throw .malformedRequest(detail: "vsock rx buffer of \(chain.writableLength) bytes (at least 44 needed)")
        }
        heldReceive = chain
        return chain
    }

    /// Sends the waiting control packets.
    private func deliver(_ queues: VirtioQueueSet) throws(VirtqueueError) {
        var sent = false
        while !control.isEmpty, let chain = try nextReceiveChain(queues) {
            var header = control.removeFirst()
            if let id = byPorts[Self.key(guestPort: header.destinationPort, hostPort: header.sourcePort)], let connection = connections[id]
            {
                // The freshest count: what the guest learns here need not be sent again.
                header.forwardCount = connection.forwardCount
                connection.reportedForwardCount = connection.forwardCount
            }
            do { try chain.writable.write(header.bytes, to: queues.memory) } catch { throw .memory(error) }
            heldReceive = nil
            try queues.push(Self.receiveQueue, head: chain.head, written: UInt32(VsockPacketHeader.size))
            sent = true
        }
        if sent { try queues.notify(Self.receiveQueue) }
    }

    /// Moves bytes from a host socket into rx buffers, within the guest's credit.
    private func deliver(_ queues: VirtioQueueSet, from connection: VsockConnection) throws(VirtqueueError) {
        try deliver(queues)
        guard control.isEmpty else { return }
        var sent = 0
        defer { if sent > 0 { try? queues.notify(Self.receiveQueue) } }
        while sent < Self.batch, connection.guestCredit > 0, !connection.hostClosed {
            guard let chain = try nextReceiveChain(queues) else { return }
            let room = min(chain.writableLength - UInt64(VsockPacketHeader.size), UInt64(connection.guestCredit), Self.maximumPayload)
            guard room > 0 else {
                throw .malformedRequest(detail: "vsock rx buffer with no room after its header")
            }
            let count: Int
            do {
                count = try queues.memory.read(
                    from: connection.fileDescriptor, into: chain.writable.slice(skipping: UInt64(VsockPacketHeader.size), limit: room))
            } catch {
                guard case .hostIOFailed(_, let code) = error else { throw .memory(error) }
                if code == EAGAIN || code == EWOULDBLOCK { return }
                hostEnded(connection, fully: true)
                return
            }
            guard count > 0 else {
                hostEnded(connection, fully: Self.peerClosed(connection.fileDescriptor))
                return
            }
            var header = packet(.readWrite, for: connection)
            header.length = UInt32(count)
            connection.reportedForwardCount = connection.forwardCount
            do { try chain.writable.write(header.bytes, to: queues.memory) } catch { throw .memory(error) }
            heldReceive = nil
            try queues.push(Self.receiveQueue, head: chain.head, written: UInt32(VsockPacketHeader.size + count))
            connection.sentToGuest &+= UInt32(count)
            sent += 1
        }
    }

    /// The host program will send no more. If it only shut its sending side
    /// (`shutdown(SHUT_WR)`, a half close) the guest hears "no more data"
    /// and may go on sending, as over TCP; if it closed the socket the guest
    /// hears a full shutdown and answers with a reset.
    private func hostEnded(_ connection: VsockConnection, fully: Bool) {
        connection.hostClosed = true
        var header = packet(.shutdown, for: connection)
        if !fully { header.flags = VsockPacketHeader.shutdownSend }
        control.append(header)
        updateInterest(connection)
    }

    /// Whether the peer of a Unix stream socket that read end of file closed
    /// it altogether (the socket hangs up) rather than shutting its sending side.
    static func peerClosed(_ fd: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        return poll(&entry, 1, 0) == 1 && entry.revents & Int16(POLLHUP) != 0
    }

    /// After a restore: `VIRTIO_VSOCK_EVENT_TRANSPORT_RESET` (id 0) in the first event buffer.
    private func sendTransportReset(_ queues: VirtioQueueSet) throws(VirtqueueError) {
        guard let chain = try queues.pop(Self.eventQueue) else { return }
        guard chain.writableLength >= 4 else {
            throw .malformedRequest(detail: "vsock event buffer of \(chain.writableLength) bytes (4 needed)")
        }
        do { try chain.writable.write(LittleEndian.bytes(UInt32(0)), to: queues.memory) } catch { throw .memory(error) }
        try queues.push(Self.eventQueue, head: chain.head, written: 4)
        try queues.notify(Self.eventQueue)
    }

    // MARK: Connections and the event loop

    /// Watches the socket for what the connection can use now: input while
    /// the guest has credit and buffers, output while bytes wait.
    private func updateInterest(_ connection: VsockConnection) {
        guard let link, let loop = link.eventLoop, connection.fileDescriptor >= 0 else { return }
        var wanted: EventLoop.Events = []
        switch connection.phase {
        case .awaitingConnectLine: wanted.insert(.readable)
        case .connecting: break
        case .established:
            if !connection.hostClosed, !receiveStarved, connection.guestCredit > 0 { wanted.insert(.readable) }
        }
        if !connection.pendingToHost.isEmpty { wanted.insert(.writable) }
        guard wanted.rawValue != connection.interest else { return }
        if connection.interest != 0 { try? loop.unregister(fd: connection.fileDescriptor) }
        connection.interest = 0
        guard !wanted.isEmpty else { return }
        let id = connection.id
        do {
            try loop.register(fd: connection.fileDescriptor, events: wanted) { [weak self] events in
                link.perform { queues throws(VirtqueueError) in try self?.hostEvent(id, events, queues) }
            }
            connection.interest = wanted.rawValue
        } catch {}
    }

    /// Ends a connection: the host socket closes, the guest hears a reset if asked.
    private func close(_ connection: VsockConnection, resetGuest: Bool) {
        if resetGuest, connection.phase != .awaitingConnectLine { control.append(packet(.reset, for: connection)) }
        drop(connection)
        connections[connection.id] = nil
        let key = Self.key(guestPort: connection.guestPort, hostPort: connection.hostPort)
        if byPorts[key] == connection.id { byPorts[key] = nil }
    }

    private func drop(_ connection: VsockConnection) {
        if connection.interest != 0, let loop = link?.eventLoop { try? loop.unregister(fd: connection.fileDescriptor) }
        connection.interest = 0
        connection.close()
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: Character) -> String { last == suffix ? String(dropLast()) : self }
}

extension VirtioVsock {
    /// What a snapshot keeps: nothing of the connections (host sockets do
    /// not survive a restore); the guest's CID is configuration.
    public struct State: Hashable, Sendable, Codable {
        public var cid: UInt64
        public init(cid: UInt64) { self.cid = cid }
    }

    public var state: State { State(cid: cid) }

    /// Before the transport's restore: the guest will be told its
    /// connections were reset (the transport-reset event) when the device
    /// is activated again.
    public func restore(_ state: State) throws(DeviceStateError) {
        guard state.cid == cid else {
            throw DeviceStateError(
                device: "VirtioVsock", field: "cid",
                problem: .inconsistent(detail: "saved for cid \(state.cid), this device has cid \(cid)"))
        }
        transportResetPending = true
    }
}
