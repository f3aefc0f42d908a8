import GuestMemory
import VMCore
import Virtio
import VirtioDevices

/// The queue walker on hostile rings: 64 KiB of guest RAM straight from the
/// input (descriptor tables, rings, indirect tables all made of fuzz bytes),
/// a layout and the features from the input's first bytes, then every
/// request taken and given back. Any chain shape must end in a chain or a
/// `VirtqueueError`, inside RAM, in bounded time.
func fuzzVirtqueue(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let sizeExponent = Int(input.next(UInt8.self) % 9)
    let features = VirtioFeatures(rawValue: UInt64(input.next(UInt8.self)) << 28)
    let layout = Virtqueue.Layout(
        size: UInt16(1) << sizeExponent, descriptorTable: UInt64(input.next(UInt16.self)),
        availableRing: UInt64(input.next(UInt16.self)), usedRing: UInt64(input.next(UInt16.self)))
    let view = fuzzGuestRAM()
    setUp { try view.write(input.take(upTo: 64 << 10), at: GuestAddress(0)) }
    guard var queue = try? Virtqueue(layout: layout, maximumSize: 256, features: features, memory: view) else { return }
    for _ in 0..<512 {
        do {
            guard let chain = try queue.pop() else { break }
            precondition(chain.readable.allSatisfy { view.contains($0.address, length: $0.length) })
            precondition(chain.writable.allSatisfy { view.contains($0.address, length: $0.length) })
            try queue.push(head: chain.head, written: UInt32(truncatingIfNeeded: chain.writableLength))
            _ = try queue.needsNotification()
        } catch { break }
    }
}

/// The virtio-mmio transport driven by register sequences from the input
/// (every offset of the window and the configuration space, every width),
/// in front of virtio-rng, with guest RAM also from the input, and the
/// queues run after every access, as a hostile driver would make them run.
func fuzzVirtioMMIO(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    let view = fuzzGuestRAM()
    setUp { try view.write(input.take(upTo: Int(input.next(UInt16.self))), at: GuestAddress(0)) }
    let transport = setUp { try VirtioMMIOTransport(device: VirtioEntropy(), memory: view, interrupt: nil, eventLoop: nil) }
    var accesses = 0
    while !input.isEmpty, accesses < 4096 {
        accesses += 1
        let opcode = input.next(UInt8.self)
        let size = mmioSizes[Int(opcode >> 2) & 3]
        let offset = UInt64(input.next(UInt16.self)) % 0x200
        switch opcode & 3 {
        case 0: _ = transport.read(offset: offset, size: size)
        case 1: _ = transport.write(offset: offset, size: size, value: input.next(UInt64.self))
        case 2:
            // A well-formed register write, so that sequences reach the running state.
            let register = [0x14, 0x20, 0x24, 0x30, 0x38, 0x44, 0x50, 0x64, 0x70, 0x80, 0x84, 0x90, 0x94, 0xa0, 0xa4][Int(offset % 15)]
            _ = transport.write(offset: UInt64(register), size: 4, value: UInt64(input.next(UInt32.self)))
        default:
            transport.processQueue(Int(input.next(UInt8.self) % 2))
        }
    }
    _ = transport.state
}

/// 64 KiB of guest RAM for one input; the view keeps it mapped.
private func fuzzGuestRAM() -> GuestMemoryView {
    do { return try GuestMemory(size: 64 << 10).view } catch { fatalError("fuzz harness: cannot map guest memory: \(error)") }
}
