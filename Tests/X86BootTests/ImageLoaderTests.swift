import GuestMemory
import Testing
import VMCore
import X86Boot

@Suite struct FlatImageTests {
    @Test func copiesTheBytesToTheLoadAddress() throws {
        let memory = try GuestMemory(size: 2 << 20)
        let image = try FlatImage.load([0xf4, 0x90, 0xcc], at: 0x10_0000, mode: .long, into: memory)
        #expect(image == LoadedImage(entry: 0x10_0000, lowestAddress: 0x10_0000, endAddress: 0x10_0003))
        #expect(try memory.read(count: 3, at: GuestAddress(0x10_0000)) == [0xf4, 0x90, 0xcc])
    }

    @Test func rejectsImagesThatDoNotFitOrCollide() throws {
        let memory = try GuestMemory(size: 1 << 20)
        #expect(throws: BootError.emptyImage) { _ = try FlatImage.load([], at: 0x7c00, mode: .real, into: memory) }
        #expect(throws: BootError.imageOutsideRAM(what: "the image", address: 0xfffff, size: 2, ramSize: 1 << 20)) {
            _ = try FlatImage.load([1, 2], at: 0xfffff, mode: .real, into: memory)
        }
        #expect(throws: BootError.imageOutsideRAM(what: "the image", address: .max, size: 2, ramSize: 1 << 20)) {
            _ = try FlatImage.load([1, 2], at: .max, mode: .real, into: memory)
        }
        // The VMM's structures go around the image: low addresses load in every mode.
        _ = try FlatImage.load([1], at: 0x1000, mode: .long, into: memory)
        #expect(throws: BootError.entryOutsideImage(entry: 0x20_0000)) {
            _ = try FlatImage.load([1], at: 0x8000, entry: 0x20_0000, mode: .protected, into: memory)
        }
        // Real mode has no VMM structures in low memory.
        _ = try FlatImage.load([1], at: 0x1000, mode: .real, into: memory)
    }
}

/// Builds a minimal ELF64 executable: one header, `segments` program headers, then the data.
func makeELF(
    entry: UInt64 = 0x10_0000, segments: [(paddr: UInt64, data: [UInt8], memsz: UInt64)] = [(0x10_0000, [0xf4], 0x10)],
    patch: (inout [UInt8]) -> Void = { _ in }
) -> [UInt8] {
    func le(_ value: UInt64, _ size: Int) -> [UInt8] { (0..<size).map { UInt8(truncatingIfNeeded: value >> (UInt64($0) * 8)) } }
    var header: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + Array(repeating: 0, count: 8)
    header += le(2, 2) + le(62, 2) + le(1, 4) + le(entry, 8) + le(64, 8) + le(0, 8)
    header += le(0, 4) + le(64, 2) + le(56, 2) + le(UInt64(segments.count), 2) + le(64, 2) + le(0, 2) + le(0, 2)
    var offset = UInt64(64 + 56 * segments.count)
    var tables: [UInt8] = []
    var data: [UInt8] = []
    for segment in segments {
        tables += le(1, 4) + le(7, 4) + le(offset, 8) + le(segment.paddr, 8) + le(segment.paddr, 8)
        tables += le(UInt64(segment.data.count), 8) + le(segment.memsz, 8) + le(0x1000, 8)
        data += segment.data
        offset += UInt64(segment.data.count)
    }
    var bytes = header + tables + data
    patch(&bytes)
    return bytes
}

@Suite struct ELF64ImageTests {
    @Test func loadsSegmentsAndZeroesBSS() throws {
        let memory = try GuestMemory(size: 4 << 20)
        try memory.fill(0xee, count: 0x100, at: GuestAddress(0x10_0000))
        let elf = try ELF64Image(parsing: makeELF(segments: [(0x10_0000, [1, 2, 3], 0x10), (0x20_0000, [9], 1)]))
        let image = try elf.load(into: memory)
        #expect(image == LoadedImage(entry: 0x10_0000, lowestAddress: 0x10_0000, endAddress: 0x20_0001))
        #expect(try memory.read(count: 0x11, at: GuestAddress(0x10_0000)) == [1, 2, 3] + Array(repeating: 0, count: 13) + [0xee])
        #expect(try memory.read(count: 1, at: GuestAddress(0x20_0000)) == [9])
    }

    @Test func rejectsForeignAndMalformedFiles() {
        func expectError(_ expected: BootError, _ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(throws: expected, sourceLocation: sourceLocation) { _ = try ELF64Image(parsing: bytes) }
        }
        expectError(.truncated(what: "the ELF header", needed: 64, available: 10), Array(makeELF().prefix(10)))
        expectError(.invalidField(field: "ELF class (e_ident[EI_CLASS])", found: 1, expected: "2 (ELFCLASS64)"), makeELF { $0[4] = 1 })
        expectError(
            .invalidField(field: "ELF data encoding (e_ident[EI_DATA])", found: 2, expected: "1 (little-endian)"), makeELF { $0[5] = 2 })
        expectError(.invalidField(field: "ELF e_machine", found: 3, expected: "62 (EM_X86_64)"), makeELF { $0[18] = 3 })
        expectError(.invalidField(field: "ELF e_type", found: 3, expected: "2 (ET_EXEC)"), makeELF { $0[16] = 3 })
        expectError(.invalidField(field: "ELF e_phentsize", found: 8, expected: "at least 56"), makeELF { $0[54] = 8 })
        expectError(.truncated(what: "the ELF program header table", needed: 64 + 56 * 200, available: 121), makeELF { $0[56] = 200 })
        expectError(
            .truncated(what: "the ELF program header table", needed: .max, available: 121), makeELF { for i in 32..<40 { $0[i] = 0xff } })
        expectError(.entryOutsideImage(entry: 0x30_0000), makeELF(entry: 0x30_0000))
        expectError(
            .invalidField(field: "ELF program header 0 p_filesz", found: 3, expected: "at most p_memsz (2)"),
            makeELF(segments: [(0x10_0000, [1, 2, 3], 2)]))
        expectError(
            .truncated(what: "ELF segment 0", needed: 121 + 0x100, available: 121),
            makeELF {
                $0[64 + 32] = 0x01; $0[64 + 33] = 0x01; $0[64 + 40] = 0x01; $0[64 + 41] = 0x01
            })
        var notELF = makeELF()
        notELF[0] = 0
        #expect(throws: BootError.self) { _ = try ELF64Image(parsing: notELF) }
    }

    @Test func rejectsSegmentsOutsideRAM() throws {
        let memory = try GuestMemory(size: 2 << 20)
        let high = try ELF64Image(parsing: makeELF(entry: 0x40_0000, segments: [(0x40_0000, [1], 1)]))
        #expect(throws: BootError.imageOutsideRAM(what: "ELF segment 0", address: 0x40_0000, size: 1, ramSize: 2 << 20)) {
            _ = try high.load(into: memory)
        }
        let low = try ELF64Image(parsing: makeELF(entry: 0x1000, segments: [(0x1000, [1], 1)]))
        #expect(try low.load(into: memory).lowestAddress == 0x1000, "the VMM's structures go around a low image")
        let wrapping = try ELF64Image(parsing: makeELF(entry: 0x10_0000, segments: [(0x10_0000, [1], 1), (.max - 0x10, [], 0x10)]))
        #expect(throws: BootError.self) { _ = try wrapping.load(into: memory) }
        let first = try memory.read(count: 1, at: GuestAddress(0x10_0000))
        #expect(first == [0], "nothing is written unless every segment fits")
    }
}
