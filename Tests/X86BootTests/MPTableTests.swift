import Testing
import VMCore
import X86Boot

/// An MP table read back the way an operating system reads it: find the
/// floating pointer, check both checksums, walk the entries by type.
struct ParsedMPTable {
    struct Processor: Equatable {
        var apicID: UInt8, version: UInt8, enabled: Bool, bootstrap: Bool
    }
    struct Interrupt: Equatable {
        var type: UInt8, flags: UInt16, bus: UInt8, irq: UInt8, destination: UInt8, pin: UInt8
    }

    var specRevision: UInt8
    var featureBytes: [UInt8]
    var oemID: String, productID: String
    var localAPICAddress: UInt32
    var entryCount: Int
    var processors: [Processor] = []
    var buses: [(id: UInt8, type: String)] = []
    var ioAPICs: [(id: UInt8, version: UInt8, enabled: Bool, address: UInt32)] = []
    var ioInterrupts: [Interrupt] = []
    var localInterrupts: [Interrupt] = []

    enum Failure: Error { case badPointer(String), badTable(String) }

    /// `image` holds guest memory from `imageBase`.
    init(image: [UInt8], imageBase: UInt64) throws {
        func u16(_ at: Int) -> UInt16 { UInt16(image[at]) | UInt16(image[at + 1]) << 8 }
        func u32(_ at: Int) -> UInt32 { UInt32(u16(at)) | UInt32(u16(at + 2)) << 16 }
        func sum(_ range: Range<Int>) -> UInt8 { image[range].reduce(0, &+) }

        guard let pointer = stride(from: 0, to: image.count - 15, by: 16).first(where: { Array(image[$0..<$0 + 4]) == Array("_MP_".utf8) })
        else { throw Failure.badPointer("no _MP_ on a 16-byte boundary") }
        guard image[pointer + 8] == 1 else { throw Failure.badPointer("length \(image[pointer + 8]), expected 1") }
        guard sum(pointer..<pointer + 16) == 0 else { throw Failure.badPointer("checksum") }
        specRevision = image[pointer + 9]
        featureBytes = Array(image[pointer + 11..<pointer + 16])
        let table = Int(UInt64(u32(pointer + 4)) - imageBase)
        guard Array(image[table..<table + 4]) == Array("PCMP".utf8) else { throw Failure.badTable("no PCMP signature") }
        let length = Int(u16(table + 4))
        guard sum(table..<table + length) == 0 else { throw Failure.badTable("checksum") }
        guard image[table + 6] == specRevision else { throw Failure.badTable("revision differs from the pointer's") }
        oemID = String(decoding: image[table + 8..<table + 16], as: UTF8.self)
        productID = String(decoding: image[table + 16..<table + 28], as: UTF8.self)
        entryCount = Int(u16(table + 34))
        localAPICAddress = u32(table + 36)
        guard u16(table + 40) == 0 else { throw Failure.badTable("extended entries") }

        var offset = table + 44
        var lastType: UInt8 = 0
        for _ in 0..<entryCount {
            let type = image[offset]
            guard type >= lastType else { throw Failure.badTable("entry type \(type) after \(lastType)") }
            lastType = type
            func interrupt() -> Interrupt {
                Interrupt(
                    type: image[offset + 1], flags: u16(offset + 2), bus: image[offset + 4], irq: image[offset + 5],
                    destination: image[offset + 6], pin: image[offset + 7])
            }
            switch type {
            case 0:
                processors.append(
                    Processor(
                        apicID: image[offset + 1], version: image[offset + 2], enabled: image[offset + 3] & 1 != 0,
                        bootstrap: image[offset + 3] & 2 != 0))
                offset += 20
                continue
            case 1: buses.append((image[offset + 1], String(decoding: image[offset + 2..<offset + 8], as: UTF8.self)))
            case 2: ioAPICs.append((image[offset + 1], image[offset + 2], image[offset + 3] & 1 != 0, u32(offset + 4)))
            case 3: ioInterrupts.append(interrupt())
            case 4: localInterrupts.append(interrupt())
            default: throw Failure.badTable("unknown entry type \(type)")
            }
            offset += 8
        }
        guard offset == table + length else { throw Failure.badTable("entries end at \(offset - table), length says \(length)") }
    }
}

@Suite struct MPTableTests {
    static let base = GuestAddress(0xf_0000)

    func parse(_ table: MPTable) throws -> ParsedMPTable {
        // Some zero bytes before it, as in the guest's BIOS area.
        try ParsedMPTable(image: [UInt8](repeating: 0, count: 64) + table.bytes, imageBase: table.base.rawValue - 64)
    }

    @Test(arguments: [1, 2, 4, 254])
    func everyProcessorIsListedOnceWithTheFirstAsBootstrap(count: Int) throws {
        let table = try MPTableBuilder.build(MPConfiguration(processorCount: count), at: Self.base)
        let parsed = try parse(table)
        #expect(parsed.processors.map(\.apicID) == (0..<count).map { UInt8($0) })
        #expect(parsed.processors.allSatisfy { $0.enabled && $0.version == 0x14 })
        #expect(parsed.processors.filter(\.bootstrap).map(\.apicID) == [0])
        #expect(parsed.entryCount == count + 1 + 1 + 15 + 2, "processors, ISA bus, I/O APIC, 15 ISA IRQs, LINT0 and LINT1")
        #expect(table.size == UInt64(16 + 44 + 20 * count + 8 * 19))
        #expect(table.range == 0xf_0000..<0xf_0000 + table.size)
    }

    @Test func theHeaderAndPointerFollowRevision14() throws {
        let table = try MPTableBuilder.build(MPConfiguration(processorCount: 2), at: Self.base)
        let parsed = try parse(table)
        #expect(parsed.specRevision == 4)
        #expect(parsed.featureBytes == [0, 0, 0, 0, 0], "a configuration table follows; no IMCR (virtual-wire mode)")
        #expect(table.configurationTableAddress == GuestAddress(0xf_0010))
        #expect(parsed.localAPICAddress == 0xfee0_0000)
        #expect(parsed.oemID == "SWIFTVMM" && parsed.productID == "SWIFTVMM SMP")
    }

    @Test func theIOAPICAndISAInterruptsMatchTheMADT() throws {
        let parsed = try parse(try MPTableBuilder.build(MPConfiguration(processorCount: 2), at: Self.base))
        #expect(parsed.buses.count == 1 && parsed.buses[0].id == 0 && parsed.buses[0].type == "ISA   ")
        #expect(parsed.ioAPICs.count == 1)
        #expect(parsed.ioAPICs.first.map { [$0.id, $0.version] } == [0, 0x11])
        #expect(parsed.ioAPICs.first?.enabled == true && parsed.ioAPICs.first?.address == 0xfec0_0000)
        let pins = Dictionary(uniqueKeysWithValues: parsed.ioInterrupts.map { ($0.irq, $0.pin) })
        #expect(pins[0] == 2, "the PIT's IRQ 0 on pin 2, as the MADT's interrupt source override says")
        #expect(pins[2] == nil, "IRQ 2 is the 8259 cascade")
        for irq in UInt8(1)..<16 where irq != 2 { #expect(pins[irq] == irq) }
        #expect(parsed.ioInterrupts.allSatisfy { $0.type == 0 && $0.flags == 0 && $0.bus == 0 && $0.destination == 0 })
    }

    @Test func lint0IsExtINTAndLint1IsNMIOnEveryProcessor() throws {
        let parsed = try parse(try MPTableBuilder.build(MPConfiguration(processorCount: 3), at: Self.base))
        #expect(parsed.localInterrupts.map { [$0.type, $0.destination, $0.pin] } == [[3, 0xff, 0], [1, 0xff, 1]])
    }

    @Test func aLastKiBOfBaseMemoryPlacementWorksToo() throws {
        let table = try MPTableBuilder.build(MPConfiguration(processorCount: 8), at: GuestAddress(0x9_fc00))
        #expect(try parse(table).processors.count == 8)
    }

    @Test func badConfigurationsAreRefusedByName() {
        #expect(throws: MPTableError.noProcessors) { try MPTableBuilder.build(MPConfiguration(processorCount: 0), at: Self.base) }
        #expect(throws: MPTableError.duplicateAPICID(1)) { try MPTableBuilder.build(MPConfiguration(apicIDs: [0, 1, 1]), at: Self.base) }
        #expect(throws: MPTableError.invalidAPICID(0xff)) { try MPTableBuilder.build(MPConfiguration(apicIDs: [0, 0xff]), at: Self.base) }
        #expect(throws: MPTableError.misalignedBase(GuestAddress(0xf_0008))) {
            try MPTableBuilder.build(MPConfiguration(processorCount: 1), at: GuestAddress(0xf_0008))
        }
        #expect(throws: MPTableError.outsideSearchArea(base: GuestAddress(0xf_ffc0), size: 232)) {
            try MPTableBuilder.build(MPConfiguration(processorCount: 1), at: GuestAddress(0xf_ffc0))
        }
        var configuration = MPConfiguration(processorCount: 1)
        configuration.isaIRQPins = [16: 3]
        #expect(throws: MPTableError.invalidIRQPin(irq: 16, pin: 3)) { try MPTableBuilder.build(configuration, at: Self.base) }
        configuration = MPConfiguration(processorCount: 1)
        configuration.oemID = "short"
        #expect(throws: MPTableError.invalidIdentifier(field: "OEM id", value: "short", length: 8)) {
            try MPTableBuilder.build(configuration, at: Self.base)
        }
    }
}
