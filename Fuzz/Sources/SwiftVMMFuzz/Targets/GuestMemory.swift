import GuestMemory
import VMCore

/// Guest RAM, the only code that holds raw pointers into guest memory:
/// layouts from the input (the sizes a user's --memory becomes, including
/// ones mmap cannot take), then reads, writes and fills at addresses near
/// each region's edges and anywhere. Lengths are capped at 64 KiB so that a
/// huge region that maps (address space only) is never touched all over.
func fuzzGuestMemory(_ bytes: [UInt8]) {
    var input = FuzzInput(bytes)
    var layout: [(base: GuestAddress, size: UInt64)] = []
    for _ in 0..<(1 + Int(input.next(UInt8.self) % 3)) {
        let kind: UInt8 = input.next()
        let base = GuestAddress(kind & 1 == 0 ? UInt64(input.next(UInt16.self)) << 12 : input.next())
        let size = kind & 2 == 0 ? UInt64(input.next(UInt8.self) % 64 + 1) << 12 : input.next()
        layout.append((base, size))
    }
    guard let memory = try? GuestMemory(regions: layout) else { return }
    let ranges = memory.ranges
    var operations = 0
    while !input.isEmpty, operations < 256 {
        operations += 1
        let opcode: UInt8 = input.next()
        // Near a region's start or end (where off-by-one errors live), or anywhere.
        let region = ranges[Int(opcode >> 4) % ranges.count]
        let delta = UInt64(bitPattern: Int64(input.next(Int16.self)))
        let address: GuestAddress
        switch opcode >> 2 & 3 {
        case 0: address = GuestAddress(region.base.rawValue &+ delta)
        case 1: address = GuestAddress(region.base.rawValue &+ region.size &+ delta)
        default: address = GuestAddress(input.next())
        }
        let length = Int(input.next(UInt16.self))
        switch opcode & 3 {
        case 0: _ = try? memory.read(count: length, at: address)
        case 1: try? memory.write(input.take(upTo: length), at: address)
        case 2: try? memory.fill(opcode, count: UInt64(length), at: address)
        default:
            _ = try? memory.readInteger(at: address, as: UInt64.self)
            try? memory.writeInteger(UInt32(length), at: address)
            _ = memory.contains(address, length: UInt64(length))
        }
    }
}
