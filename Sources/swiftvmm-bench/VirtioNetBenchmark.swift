import Foundation
import GuestMemory
import VMCore
import Virtio
import VirtioDevices
import VirtioTestDriver

/// virtio-net's host side alone, before guest drivers give end-to-end
/// figures: 1514-byte frames through the transport, the queues and the
/// device, to and from a datagram socket pair standing in for the tap
/// (the kernel's tap costs come on top). Transmit: 64 chains made available,
/// one notification, the device `writev`s each frame. Receive: 64 frames
/// waiting, 64 buffers made available, one notification, the device
/// `readv`s each frame into guest RAM.
enum VirtioNetBenchmark {
    static let frameSize = 1514
    static let batch = 64

    static func run(frames: Int, rounds: Int) {
        print("virtio-net host side (no guest, no KVM): \(frameSize)-byte frames in batches of \(batch), \(frames) frames per round:")
        do {
            var transmit: [Double] = []
            var receive: [Double] = []
            for _ in 0..<rounds {
                let times = try once(frames: frames)
                transmit.append(Double(frames) / times.transmit)
                receive.append(Double(frames) / times.receive)
            }
            let bytes = Double(frameSize) / 1e6
            print(
                String(
                    format: "  transmit (guest -> socket): %.0f frames/s, %.0f MB/s (median)", median(transmit), median(transmit) * bytes))
            print(
                String(format: "  receive (socket -> guest):  %.0f frames/s, %.0f MB/s (median)", median(receive), median(receive) * bytes))
        } catch {
            print("  SKIPPED: \(error)")
        }
    }

    private static func once(frames: Int) throws -> (transmit: Double, receive: Double) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0 else {
            throw POSIXError(.EIO)
        }
        defer { fds.forEach { close($0) } }
        var size: Int32 = 8 << 20
        for fd in fds { setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, 4) }
        for fd in fds { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4) }
        let memory = try GuestMemory(size: 16 << 20)
        let net = VirtioNet(packetDescriptor: fds[0], name: "bench")
        let transport = try VirtioMMIOTransport(device: net, memory: memory.view, interrupt: nil, eventLoop: nil)
        let driver = VirtioTestDriver(transport: transport, memory: memory.view)
        driver.negotiate(VirtioFeatures.version1.union(VirtioNet.Feature.mac))
        driver.setUpQueue(0, size: 256)
        driver.setUpQueue(1, size: 256)
        guard driver.start() else { throw POSIXError(.EINVAL) }
        // One buffer per descriptor, reused: rx buffers writable, tx buffers holding a header and a frame.
        let length = UInt32(12 + frameSize)
        for index in 0..<UInt16(256) {
            let receiveBuffer = driver.allocate(UInt64(length))
            driver.writeDescriptor(queue: 0, index: index, address: receiveBuffer, length: length, flags: 2, next: 0)
            let transmitBuffer = driver.allocate(UInt64(length))
            try memory.fill(0x42, count: UInt64(length), at: GuestAddress(transmitBuffer))
            try memory.fill(0, count: 12, at: GuestAddress(transmitBuffer))
            driver.writeDescriptor(queue: 1, index: index, address: transmitBuffer, length: length, flags: 0, next: 0)
        }
        var scratch = [UInt8](repeating: 0, count: 2048)
        var head: UInt16 = 0
        let transmitStart = ContinuousClock.now
        var sent = 0
        while sent < frames {
            for _ in 0..<batch {
                driver.makeAvailable(queue: 1, head: head)
                head = (head + 1) % 256
            }
            driver.notify(queue: 1)
            for _ in 0..<batch { _ = scratch.withUnsafeMutableBytes { recv(fds[1], $0.baseAddress, $0.count, 0) } }
            _ = driver.takeUsed(queue: 1)
            sent += batch
        }
        let transmit = seconds(ContinuousClock.now - transmitStart)
        let frame = [UInt8](repeating: 0, count: 12) + [UInt8](repeating: 0x24, count: frameSize)
        let receiveStart = ContinuousClock.now
        var received = 0
        while received < frames {
            for _ in 0..<batch {
                _ = frame.withUnsafeBytes { send(fds[1], $0.baseAddress, $0.count, 0) }
                driver.makeAvailable(queue: 0, head: head)
                head = (head + 1) % 256
            }
            driver.notify(queue: 0)
            received += driver.takeUsed(queue: 0).count
        }
        let receive = seconds(ContinuousClock.now - receiveStart)
        guard net.statistics.framesSent == UInt64(frames), net.statistics.sendDropped == 0 else {
            throw POSIXError(.EIO)
        }
        return (transmit, receive)
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
