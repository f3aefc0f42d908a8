import VMCore

/// A fuzzer's bytes consumed front to back as small values. Running out is
/// never an error: missing bytes read as zero and `isEmpty` ends the loop.
struct FuzzInput {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: [UInt8]) { self.bytes = bytes[...] }

    var isEmpty: Bool { bytes.isEmpty }

    /// A little-endian integer from the next `MemoryLayout<T>.size` bytes.
    mutating func next<T: FixedWidthInteger>(_: T.Type = T.self) -> T {
        var value: T = 0
        for i in 0..<MemoryLayout<T>.size {
            guard let byte = bytes.popFirst() else { break }
            value |= T(truncatingIfNeeded: byte) << (i * 8)
        }
        return value
    }

    /// Up to `count` bytes.
    mutating func take(upTo count: Int) -> [UInt8] {
        let taken = bytes.prefix(count)
        bytes = bytes.dropFirst(taken.count)
        return Array(taken)
    }
}

/// The access sizes x86 port I/O has; MMIO adds 8.
let portSizes = [1, 2, 4]
let mmioSizes = [1, 2, 4, 8]

/// Decodes `bytes` into guest reads and writes of a port device registered
/// with `ports` ports, the way the bus would issue them: an opcode byte (its
/// low two bits: 0 read, 1 write, 2 host-side event, 3 read; the next two
/// bits the size), an offset byte taken modulo `ports`, and a 32-bit value for
/// a write. `event` lets a target mix in what the host does between guest
/// accesses (queue serial input, tick a clock). At most 4096 accesses.
func drive(
    _ device: any PortIODevice, ports: UInt16, _ bytes: [UInt8], event: (inout FuzzInput) -> Void = { _ in }
) {
    var input = FuzzInput(bytes)
    var accesses = 0
    while !input.isEmpty, accesses < 4096 {
        accesses += 1
        let opcode: UInt8 = input.next()
        let size = portSizes[Int(opcode >> 2 & 3) % portSizes.count]
        let offset = UInt16(input.next(UInt8.self)) % ports
        switch opcode & 3 {
        case 1:
            let value = UInt64(input.next(UInt32.self))
            _ = device.write(offset: offset, size: size, value: value)
        case 2:
            event(&input)
        default:
            // Only the low `size` bytes are used (the protocol's contract); the call must simply return.
            _ = device.read(offset: offset, size: size)
        }
    }
}

/// Harness set-up with constant arguments, which cannot fail unless the
/// harness itself is wrong: that stops the run with the error.
func setUp<T>(_ body: () throws -> T) -> T {
    do { return try body() } catch { fatalError("fuzz harness set-up failed: \(error)") }
}
