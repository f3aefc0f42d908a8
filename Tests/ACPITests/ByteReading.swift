import ACPI
import Testing
import VMCore

/// Little-endian reads and sums over table bytes, independent of the module's own writer.
extension Array where Element == UInt8 {
    func le16(at offset: Int) -> UInt16 {
        UInt16(self[offset]) | UInt16(self[offset + 1]) << 8
    }

    func le32(at offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(self[offset + $1]) << (8 * $1) }
    }

    func le64(at offset: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 | UInt64(self[offset + $1]) << (8 * $1) }
    }

    func slice(_ offset: Int, _ count: Int) -> [UInt8] {
        Array(self[offset..<offset + count])
    }

    func ascii(_ offset: Int, _ count: Int) -> String {
        String(decoding: slice(offset, count), as: UTF8.self)
    }

    /// The sum of all bytes modulo 256: zero for a table with a correct checksum.
    var byteSum: UInt8 { reduce(0, &+) }
}

let base = GuestAddress(0xe_0000)

func tables(vCPUs: Int = 2, at address: GuestAddress = base) throws -> ACPITables {
    try ACPITableBuilder.build(ACPIConfiguration(vCPUCount: vCPUs), at: address)
}

func table(_ signature: String, in tables: ACPITables) throws -> ACPITable {
    try #require(tables[signature: signature])
}
