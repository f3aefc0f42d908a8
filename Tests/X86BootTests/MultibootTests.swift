import GuestMemory
import Testing
import VMCore

@testable import X86Boot

/// Multiboot images built byte by byte, so every field can be set or broken.
enum MultibootFixtures {
    static func le<T: BinaryInteger>(_ value: T, _ size: Int) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }

    struct AddressFields {
        var header: UInt32
        var load: UInt32
        var loadEnd: UInt32
        var bssEnd: UInt32
        var entry: UInt32
    }

    /// A Multiboot header: magic, `flags`, the checksum (correct unless given),
    /// then the address fields if given and the video fields if flags bit 2 is set.
    static func header(flags: UInt32, checksum: UInt32? = nil, address: AddressFields? = nil) -> [UInt8] {
        var bytes = le(MultibootHeader.magic, 4) + le(flags, 4) + le(checksum ?? (0 &- (MultibootHeader.magic &+ flags)), 4)
        if flags & (MultibootHeader.addressFields | MultibootHeader.videoMode) != 0 {
            let a = address ?? AddressFields(header: 0, load: 0, loadEnd: 0, bssEnd: 0, entry: 0)
            bytes += [a.header, a.load, a.loadEnd, a.bssEnd, a.entry].flatMap { le($0, 4) }
        }
        if flags & MultibootHeader.videoMode != 0 { bytes += [1, 80, 25, 0].flatMap { le(UInt32($0), 4) } }
        return bytes
    }

    /// The code every fixture kernel runs: `mov $0xf4, %dx; out %eax, %dx; hlt`.
    static let code: [UInt8] = [0x66, 0xba, 0xf4, 0x00, 0xef, 0xf4]

    /// An ELF32 i386 executable with one PT_LOAD holding `header` then `code`
    /// at `physical` (linked at `virtual`), `memorySize` bytes in memory, entered at the code.
    static func elf32(
        header: [UInt8], physical: UInt32 = 0x10_0000, virtual: UInt32? = nil, memorySize: UInt32 = 0x2000, elfClass: UInt8 = 1,
        machine: UInt16 = 3, entry: UInt32? = nil
    ) -> [UInt8] {
        let virtual = virtual ?? physical
        let content = header + code
        let contentOffset: UInt32 = 0x60
        var bytes: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, elfClass, 1, 1] + [UInt8](repeating: 0, count: 9)
        bytes += le(2, 2) + le(machine, 2) + le(1, 4) + le(entry ?? (virtual + UInt32(header.count)), 4) + le(52, 4) + le(0, 4)
        bytes += le(0, 4) + le(52, 2) + le(32, 2) + le(1, 2) + le(0, 2) + le(0, 2) + le(0, 2)
        bytes += le(1, 4) + le(contentOffset, 4) + le(virtual, 4) + le(physical, 4) + le(content.count, 4) + le(memorySize, 4)
        bytes += le(5, 4) + le(4, 4)
        bytes += [UInt8](repeating: 0, count: Int(contentOffset) - bytes.count)
        return bytes + content
    }

    /// An a.out-kludge image: `prefix` bytes of 0x90, the header with address
    /// fields, then `code`; loaded from file offset 0 at `load`, with `bss` bytes of .bss.
    static func aout(flags: UInt32 = MultibootHeader.addressFields, load: UInt32 = 0x10_0000, prefix: Int = 0x20, bss: UInt32 = 0x1000)
        -> (image: [UInt8], fields: AddressFields)
    {
        let headerSize = UInt32(flags & MultibootHeader.videoMode != 0 ? 48 : 32)
        let size = UInt32(prefix) + headerSize + UInt32(code.count)
        let fields = AddressFields(
            header: load + UInt32(prefix), load: load, loadEnd: load + size, bssEnd: load + size + bss,
            entry: load + UInt32(prefix) + headerSize)
        return (image(prefix: prefix, flags: flags, fields: fields), fields)
    }

    static func image(prefix: Int, flags: UInt32, fields: AddressFields) -> [UInt8] {
        [UInt8](repeating: 0x90, count: prefix) + header(flags: flags | MultibootHeader.addressFields, address: fields) + code
    }
}

/// What a kernel finds at EBX, read back from guest memory.
struct DecodedMultibootInfo {
    var flags: UInt32
    var memoryLower: UInt32
    var memoryUpper: UInt32
    var commandLine: String
    var modules: [(start: UInt32, end: UInt32, commandLine: String)]
    var memoryMap: [(base: UInt64, length: UInt64, type: UInt32)]
    var bootLoaderName: String

    init(memory: borrowing GuestMemory, at address: GuestAddress = MultibootLayout.info) throws {
        func u32(_ at: UInt64) throws -> UInt32 { try memory.readInteger(at: GuestAddress(at), as: UInt32.self) }
        func u64(_ at: UInt64) throws -> UInt64 { try memory.readInteger(at: GuestAddress(at), as: UInt64.self) }
        func string(_ at: UInt32) throws -> String {
            var bytes: [UInt8] = []
            var position = UInt64(at)
            while true {
                let byte = try memory.read(count: 1, at: GuestAddress(position))[0]
                if byte == 0 { break }
                bytes.append(byte)
                position += 1
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        let base = address.rawValue
        flags = try u32(base)
        memoryLower = try u32(base + 4)
        memoryUpper = try u32(base + 8)
        commandLine = try string(try u32(base + 16))
        let count = try u32(base + 20)
        let list = UInt64(try u32(base + 24))
        modules = try (0..<UInt64(count)).map { i in
            (try u32(list + i * 16), try u32(list + i * 16 + 4), try string(try u32(list + i * 16 + 8)))
        }
        var entries: [(UInt64, UInt64, UInt32)] = []
        var position = UInt64(try u32(base + 48))
        let end = position + UInt64(try u32(base + 44))
        while position < end {
            entries.append((try u64(position + 4), try u64(position + 12), try u32(position + 20)))
            position += UInt64(try u32(position)) + 4
        }
        memoryMap = entries
        bootLoaderName = try string(try u32(base + 64))
    }
}

@Suite struct MultibootHeaderTests {
    typealias F = MultibootFixtures

    @Test func theHeaderIsFoundAtAnyAlignedOffsetInTheFirst8KiB() throws {
        for offset in [0, 4, 0x1000, 8192 - 12] {
            let image = [UInt8](repeating: 0, count: offset) + F.header(flags: 0)
            let header = try MultibootHeader(parsing: image)
            #expect(header.offset == offset)
            #expect(header.flags == 0 && header.addressFields == nil && header.videoMode == nil)
        }
    }

    @Test func aMisalignedOrLateMagicIsNoHeader() {
        let misaligned = [UInt8](repeating: 0, count: 2) + F.header(flags: 0) + [0, 0]
        #expect(MultibootHeader.find(in: misaligned) == nil)
        #expect(throws: BootError.multibootHeaderMissing) { try MultibootHeader(parsing: misaligned) }
        let late = [UInt8](repeating: 0, count: 8192) + F.header(flags: 0)
        #expect(MultibootHeader.find(in: late) == nil)
        #expect(MultibootKernel.isMultiboot(late) == false)
        #expect(throws: BootError.multibootHeaderMissing) { try MultibootKernel(parsing: Array("not a kernel".utf8)) }
        #expect(throws: BootError.emptyImage) { try MultibootKernel(parsing: []) }
    }

    @Test func aBadChecksumIsRefusedWithTheExpectedValue() {
        let image = F.header(flags: 3, checksum: 0x1234)
        #expect(throws: BootError.self) { try MultibootHeader(parsing: image) }
        do {
            _ = try MultibootHeader(parsing: image)
        } catch {
            #expect(error.description.contains("Multiboot header checksum"))
            #expect(error.description.contains("is 0x1234, expected 0xe4524ffb"), "\(error)")
        }
    }

    @Test(arguments: 3...15)
    func unknownRequiredFlagsAreRefused(bit: Int) throws {
        let flags = UInt32(1) << UInt32(bit) | MultibootHeader.memoryInfo
        let error = #expect(throws: BootError.self) { try MultibootHeader(parsing: F.header(flags: flags)) }
        #expect(error?.description.contains("Multiboot header flags is \(hex(flags))") == true, "\(String(describing: error))")
        #expect(error?.description.contains("bits \(hex(UInt32(1) << UInt32(bit))) are not supported") == true)
    }

    @Test(arguments: [UInt32(1) << 17, 1 << 24, 1 << 31, 0xfffe_0000])
    func optionalFlagsAreAccepted(flags: UInt32) throws {
        #expect(try MultibootHeader(parsing: F.header(flags: flags)).flags == flags)
    }

    @Test func aHeaderCutShortByTheFileIsTruncated() {
        // Bit 16 promises 20 more bytes that the file does not have.
        let image = F.header(flags: MultibootHeader.addressFields, address: .init(header: 0, load: 0, loadEnd: 0, bssEnd: 0, entry: 0))
        #expect(throws: BootError.truncated(what: "the Multiboot header (flags 0x10000)", needed: 32, available: 28)) {
            try MultibootHeader(parsing: Array(image.prefix(28)))
        }
        // Bit 2 promises 48 bytes.
        #expect(throws: BootError.truncated(what: "the Multiboot header (flags 0x4)", needed: 48, available: 40)) {
            try MultibootHeader(parsing: Array(F.header(flags: MultibootHeader.videoMode).prefix(40)))
        }
    }

    @Test func aHeaderReachingPast8KiBIsRefused() {
        let image = [UInt8](repeating: 0, count: 8192 - 12) + F.header(flags: MultibootHeader.addressFields) + [0, 0, 0, 0]
        #expect(
            throws: BootError.invalidField(
                field: "Multiboot header offset", found: 8180,
                expected: "a 32-byte header (flags 0x10000) entirely inside the first 8192 bytes")
        ) { try MultibootHeader(parsing: image) }
    }

    @Test func addressAndVideoFieldsAreRead() throws {
        let (image, fields) = F.aout(flags: MultibootHeader.videoMode)
        let header = try MultibootHeader(parsing: image)
        #expect(header.offset == 0x20)
        #expect(
            header.addressFields
                == .init(
                    headerAddress: fields.header, loadAddress: fields.load, loadEndAddress: fields.loadEnd, bssEndAddress: fields.bssEnd,
                    entryAddress: fields.entry))
        #expect(header.videoMode == .init(modeType: 1, width: 80, height: 25, depth: 0))
    }
}

@Suite struct MultibootLoaderTests {
    typealias F = MultibootFixtures
    static let ramSize: UInt64 = 16 << 20

    func memoryMap(_ memory: borrowing GuestMemory) throws -> E820Map { try E820Map(guestRAM: memory.ranges) }

    func bytes(_ memory: borrowing GuestMemory, _ count: Int, at address: UInt64) throws -> [UInt8] {
        try memory.read(count: count, at: GuestAddress(address))
    }

    static let modules = [
        MultibootModule(bytes: Array("module one".utf8), commandLine: "one.mod --verbose"),
        MultibootModule(bytes: [], commandLine: "empty.mod"),
        MultibootModule(bytes: [UInt8](repeating: 0x5a, count: 5000), commandLine: "three"),
    ]

    /// Each combination of the flags a kernel may require (page-aligned
    /// modules, memory information, a video mode) and the address fields: the
    /// image loads, and the kernel gets the same complete information, since
    /// swiftvmm always page-aligns modules and always gives memory information.
    @Test(arguments: [UInt32(0), 1, 2, 3, 4, 5, 6, 7, 0x1_0000, 0x1_0003, 0x1_0007])
    func everyFlagCombinationLoadsWithFullInformation(flags: UInt32) throws {
        let memory = try GuestMemory(size: Self.ramSize)
        let map = try memoryMap(memory)
        let image =
            flags & MultibootHeader.addressFields != 0
            ? F.aout(flags: flags).image
            : F.elf32(header: F.header(flags: flags, address: .init(header: 0, load: 0, loadEnd: 0, bssEnd: 0, entry: 0)))
        let kernel = try MultibootKernel(parsing: image)
        #expect(kernel.format == (flags & MultibootHeader.addressFields != 0 ? .addressFields : .elf32))
        let plan = try kernel.load(commandLine: "kernel args", modules: Self.modules, memoryMap: map, into: memory)
        let info = try DecodedMultibootInfo(memory: memory)
        #expect(info.flags == 0x24d)  // memory, cmdline, modules, memory map, boot loader name
        #expect(info.memoryLower == 639)
        #expect(info.memoryUpper == UInt32((Self.ramSize - (1 << 20)) >> 10))
        #expect(info.commandLine == "kernel args")
        #expect(info.modules.map(\.commandLine) == Self.modules.map(\.commandLine))
        for (module, (start, end, _)) in zip(Self.modules, info.modules) {
            #expect(start % 0x1000 == 0)
            #expect(UInt64(start) >= plan.kernelEnd.rawValue)
            #expect(end - start == UInt32(module.bytes.count))
            #expect(try bytes(memory, module.bytes.count, at: UInt64(start)) == module.bytes)
        }
        #expect(plan.modules.map(\.address.rawValue) == info.modules.map { UInt64($0.start) })
    }

    @Test func theInformationStructureDescribesTheMemoryMapAndItsStrings() throws {
        let memory = try GuestMemory(regions: [(GuestAddress(0), 32 << 20)])
        let acpi = E820Entry(address: 0xe_0000, size: 0x1000, type: .acpi)
        let map = try E820Map(guestRAM: memory.ranges, reserved: [acpi])
        let kernel = try MultibootKernel(parsing: F.elf32(header: F.header(flags: 3)))
        let plan = try kernel.load(commandLine: "/boot/kernel root=/dev/x", modules: [], memoryMap: map, into: memory)
        #expect(plan.info == GuestAddress(0x9000))
        let info = try DecodedMultibootInfo(memory: memory)
        #expect(info.memoryMap.map(\.base) == map.entries.map(\.address))
        #expect(info.memoryMap.map(\.length) == map.entries.map(\.size))
        #expect(info.memoryMap.map(\.type) == map.entries.map(\.type.rawValue))
        #expect(info.memoryMap.contains { $0.base == 0xe_0000 && $0.length == 0x1000 && $0.type == 3 })
        #expect(info.memoryUpper == (32 << 10) - 1024)
        #expect(info.modules.isEmpty)
        #expect(info.commandLine == "/boot/kernel root=/dev/x")
        #expect(info.bootLoaderName == "swiftvmm")
        // Everything the structure points to lies in its own area, below the kernel.
        #expect(plan.infoSize <= MultibootLayout.areaEnd - MultibootLayout.info.rawValue)
    }

    @Test func theAddressFieldsLoadFromTheHeadersOffsetAndZeroTheBSS() throws {
        let memory = try GuestMemory(size: Self.ramSize)
        let map = try memoryMap(memory)
        try memory.fill(0xff, count: 0x3000, at: GuestAddress(0x10_0000))
        let (image, fields) = F.aout(prefix: 0x40, bss: 0x1800)
        let plan = try MultibootKernel(parsing: image).load(commandLine: "k", memoryMap: map, into: memory)
        #expect(try bytes(memory, image.count, at: 0x10_0000) == image)
        let bssStart = UInt64(fields.loadEnd)
        #expect(try bytes(memory, 0x1800, at: bssStart).allSatisfy { $0 == 0 })
        #expect(try bytes(memory, 1, at: UInt64(fields.bssEnd)) == [0xff], "nothing past bss_end_addr is touched")
        #expect(plan.entry.rawValue == UInt64(fields.entry))
        #expect(plan.kernelStart.rawValue == 0x10_0000 && plan.kernelEnd.rawValue == UInt64(fields.bssEnd))
    }

    @Test func aZeroLoadEndMeansTheWholeFileAndZeroBSSEndMeansNone() throws {
        let memory = try GuestMemory(size: Self.ramSize)
        let map = try memoryMap(memory)
        var (image, fields) = F.aout(prefix: 0x20)
        fields.loadEnd = 0
        fields.bssEnd = 0
        image = F.image(prefix: 0x20, flags: 0, fields: fields) + [0xaa, 0xbb]
        let kernel = try MultibootKernel(parsing: image)
        #expect(
            kernel.segments == [.init(fileOffset: 0, fileSize: UInt64(image.count), memorySize: UInt64(image.count), address: 0x10_0000)])
        _ = try kernel.load(commandLine: "", memoryMap: map, into: memory)
        #expect(try bytes(memory, image.count, at: 0x10_0000) == image)
    }

    @Test func theAddressFieldsOverrideTheELFHeaders() throws {
        let memory = try GuestMemory(size: Self.ramSize)
        let map = try memoryMap(memory)
        // An ELF whose program header says 0x300000, with address fields loading the whole file at 0x200000.
        let headerOffset: UInt32 = 0x60
        let fields = F.AddressFields(
            header: 0x20_0000 + headerOffset, load: 0x20_0000, loadEnd: 0, bssEnd: 0, entry: 0x20_0000 + headerOffset + 32)
        let image = F.elf32(header: F.header(flags: MultibootHeader.addressFields, address: fields), physical: 0x30_0000)
        let kernel = try MultibootKernel(parsing: image)
        #expect(kernel.format == .addressFields)
        _ = try kernel.load(commandLine: "", memoryMap: map, into: memory)
        #expect(try bytes(memory, 4, at: 0x20_0000) == [0x7f, 0x45, 0x4c, 0x46])
        #expect(try bytes(memory, 16, at: 0x30_0000).allSatisfy { $0 == 0 })
    }

    struct BadFields: CustomTestStringConvertible, Sendable {
        var name: String
        var change: @Sendable (inout F.AddressFields) -> Void
        var error: BootError
        var testDescription: String { name }
    }

    static let badFields: [BadFields] = [
        BadFields(
            name: "header_addr below load_addr", change: { $0.load = $0.header + 4 },
            error: .invalidField(field: "Multiboot header_addr", found: 0x10_0020, expected: "at least load_addr (0x100024)")),
        BadFields(
            name: "load_addr before the file's start", change: { $0.load -= 0x100 },
            error: .invalidField(
                field: "Multiboot load_addr", found: 0xf_ff00,
                expected: "at most 32 bytes below header_addr (0x100020), the header's file offset, so that loading starts inside the file")
        ),
        BadFields(
            name: "load_end_addr below load_addr", change: { $0.loadEnd = $0.load - 1 },
            error: .invalidField(field: "Multiboot load_end_addr", found: 0xf_ffff, expected: "0 or above load_addr (0x100000)")),
        BadFields(
            name: "load_end_addr past the file", change: { $0.loadEnd += 0x10 },
            error: .truncated(
                what: "the Multiboot image's text and data (load_addr to load_end_addr from file offset 0)", needed: 0x56, available: 0x46)),
        BadFields(
            name: "bss_end_addr below load_end_addr", change: { $0.bssEnd = $0.loadEnd - 1 },
            error: .invalidField(
                field: "Multiboot bss_end_addr", found: 0x10_0045, expected: "0 or at least the end of the loaded data (0x100046)")),
        BadFields(name: "entry_addr outside the image", change: { $0.entry = $0.bssEnd }, error: .entryOutsideImage(entry: 0x10_1046)),
    ]

    @Test(arguments: badFields)
    func malformedAddressFieldsAreRefused(_ bad: BadFields) {
        var (_, fields) = F.aout()
        bad.change(&fields)
        #expect(throws: bad.error) { try MultibootKernel(parsing: F.image(prefix: 0x20, flags: 0, fields: fields)) }
    }

    @Test func anImageThatIsNotELFNeedsTheAddressFields() {
        let image = [UInt8](repeating: 0x90, count: 16) + F.header(flags: 3) + F.code
        #expect(
            throws: BootError.invalidField(
                field: "Multiboot header flags", found: 3,
                expected: "bit 16 (the address fields) set: the image is not ELF, so only they can say where it goes")
        ) { try MultibootKernel(parsing: image) }
    }

    @Test func elf32IsLoadedAtItsPhysicalAddressesWithTheEntryTranslated() throws {
        let memory = try GuestMemory(size: Self.ramSize)
        let map = try memoryMap(memory)
        let header = F.header(flags: 2)
        // Linked to run at 3 GiB + 1 MiB, loaded at 2 MiB, with e_entry virtual.
        let image = F.elf32(header: header, physical: 0x20_0000, virtual: 0xc010_0000, memorySize: 0x3000)
        try memory.fill(0xee, count: 0x3000, at: GuestAddress(0x20_0000))
        let kernel = try MultibootKernel(parsing: image)
        #expect(kernel.entry == 0x20_0000 + UInt32(header.count))
        let plan = try kernel.load(commandLine: "", memoryMap: map, into: memory)
        #expect(plan.entry.rawValue == 0x20_0000 + UInt64(header.count))
        #expect(try bytes(memory, header.count + F.code.count, at: 0x20_0000) == header + F.code)
        #expect(
            try bytes(memory, 0x3000 - header.count - F.code.count, at: 0x20_0000 + UInt64(header.count + F.code.count)).allSatisfy {
                $0 == 0
            })
        #expect(plan.kernelEnd.rawValue == 0x20_3000)
    }

    @Test func elfFilesTheLoaderCannotUseAreRefused() {
        let header = F.header(flags: 0)
        #expect(
            throws: BootError.invalidField(
                field: "ELF class (e_ident[EI_CLASS])", found: 2,
                expected:
                    "1 (ELFCLASS32): a Multiboot kernel without the address fields (header flags bit 16) must be a 32-bit ELF, as QEMU also requires"
            )
        ) { try MultibootKernel(parsing: F.elf32(header: header, elfClass: 2)) }
        #expect(throws: BootError.invalidField(field: "ELF e_machine", found: 62, expected: "3 (EM_386)")) {
            try MultibootKernel(parsing: F.elf32(header: header, machine: 62))
        }
        #expect(throws: BootError.entryOutsideImage(entry: 0x50_0000)) {
            try MultibootKernel(parsing: F.elf32(header: header, entry: 0x50_0000))
        }
        var truncatedTable = F.elf32(header: header)
        truncatedTable.replaceSubrange(28..<32, with: MultibootFixtures.le(UInt32(truncatedTable.count - 16), 4))  // e_phoff
        #expect(
            throws: BootError.truncated(
                what: "the ELF program header table", needed: UInt64(truncatedTable.count + 16), available: UInt64(truncatedTable.count))
        ) {
            try MultibootKernel(parsing: truncatedTable)
        }
        var pastTheEnd = F.elf32(header: header)
        pastTheEnd.replaceSubrange(68..<72, with: MultibootFixtures.le(UInt32(0x1000), 4))  // p_filesz
        #expect(throws: BootError.truncated(what: "ELF segment 0", needed: 0x1060, available: UInt64(pastTheEnd.count))) {
            try MultibootKernel(parsing: pastTheEnd)
        }
        #expect(
            throws: BootError.invalidField(
                field: "ELF program header 0 p_paddr + p_memsz", found: 0x1_0000_1000,
                expected: "at most 4 GiB (0x100000000): a Multiboot kernel runs with paging off")
        ) { try MultibootKernel(parsing: F.elf32(header: header, physical: 0xffff_f000)) }
    }

    @Test func loadAddressesOutsideRAMAreRefusedAndNothingIsWritten() throws {
        let memory = try GuestMemory(size: Self.ramSize)
        let map = try memoryMap(memory)
        let header = F.header(flags: 0)
        let cases: [(UInt32, BootError)] = [
            (0x200_0000, .notUsableRAM(what: "ELF segment 0", address: 0x200_0000, size: 0x2000)),  // past the end of RAM
            (0xa_0000, .notUsableRAM(what: "ELF segment 0", address: 0xa_0000, size: 0x2000)),  // the VGA hole
        ]
        for (address, error) in cases {
            let kernel = try MultibootKernel(parsing: F.elf32(header: header, physical: address))
            #expect(throws: error) { try kernel.load(commandLine: "x", memoryMap: map, into: memory) }
        }
        // The same for the address fields, whose load may be anywhere below 4 GiB.
        let (outside, _) = F.aout(load: 0xfff0_0000)
        #expect(throws: BootError.notUsableRAM(what: "the Multiboot image (load_addr to bss_end_addr)", address: 0xfff0_0000, size: 0x1046))
        {
            try MultibootKernel(parsing: outside).load(commandLine: "", memoryMap: map, into: memory)
        }
        // A map that claims more RAM than there is: guest memory itself refuses.
        let liar = try E820Map(entries: [E820Entry(address: 0x10_0000, size: 1 << 30, type: .ram)])
        let far = try MultibootKernel(parsing: F.elf32(header: header, physical: 0x200_0000))
        #expect(throws: BootError.imageOutsideRAM(what: "ELF segment 0", address: 0x200_0000, size: 0x2000, ramSize: Self.ramSize)) {
            try far.load(commandLine: "", memoryMap: liar, into: memory)
        }
        #expect(try bytes(memory, 0x100, at: MultibootLayout.info.rawValue).allSatisfy { $0 == 0 }, "no information was written")
    }

    @Test func modulesThatDoNotFitAreRefusedAndNothingIsWritten() throws {
        let memory = try GuestMemory(size: Self.ramSize)
        let map = try memoryMap(memory)
        let kernel = try MultibootKernel(parsing: F.elf32(header: F.header(flags: 1)))
        let big = MultibootModule(bytes: [UInt8](repeating: 1, count: Int(Self.ramSize)), commandLine: "big")
        #expect(throws: BootError.moduleDoesNotFit(index: 1, size: Self.ramSize, lowest: 0x10_2000)) {
            try kernel.load(commandLine: "", modules: [Self.modules[1], big], memoryMap: map, into: memory)
        }
        #expect(try bytes(memory, 16, at: 0x10_0000).allSatisfy { $0 == 0 })
        #expect(try bytes(memory, 16, at: MultibootLayout.info.rawValue).allSatisfy { $0 == 0 })
    }

    @Test func commandLinesWithANULAreRefused() throws {
        let memory = try GuestMemory(size: Self.ramSize)
        let map = try memoryMap(memory)
        let kernel = try MultibootKernel(parsing: F.elf32(header: F.header(flags: 0)))
        #expect(throws: BootError.invalidField(field: "Multiboot command line byte 3", found: 0, expected: "any byte but NUL")) {
            try kernel.load(commandLine: "abc\0def", memoryMap: map, into: memory)
        }
        let module = MultibootModule(bytes: [1], commandLine: "\0")
        #expect(throws: BootError.invalidField(field: "Multiboot command line byte 0", found: 0, expected: "any byte but NUL")) {
            try kernel.load(commandLine: "", modules: [module], memoryMap: map, into: memory)
        }
    }

    @Test func aLongCommandLineIsPlacedWhereItFitsAndOneLongerThanRAMIsRefused() throws {
        let memory = try GuestMemory(size: Self.ramSize)
        let map = try memoryMap(memory)
        let kernel = try MultibootKernel(parsing: F.elf32(header: F.header(flags: 0)))
        let plan = try kernel.load(commandLine: String(repeating: "x", count: 0x2_0000), memoryMap: map, into: memory)
        #expect(try DecodedMultibootInfo(memory: memory, at: plan.info).commandLine.count == 0x2_0000)
        #expect(plan.info.rawValue + plan.infoSize <= 0x9_fc00 || plan.info.rawValue >= 0x10_2000, "beside the kernel, in RAM")
        let error = #expect(throws: BootError.self) {
            try kernel.load(commandLine: String(repeating: "x", count: Int(Self.ramSize)), memoryMap: map, into: memory)
        }
        guard case .noRoomForBootStructures(let what, let size)? = error else {
            Issue.record("expected noRoomForBootStructures, got \(String(describing: error))")
            return
        }
        #expect(what == "the Multiboot information" && size > Self.ramSize)
        #expect(error?.description.contains("the Multiboot information") == true, "\(String(describing: error))")
    }

    @Test func theLowestRAMPlacementIsAlignedAndInsideOneEntry() throws {
        let map = try E820Map(entries: [
            E820Entry(address: 0, size: 0x9_fc00, type: .ram), E820Entry(address: 0x10_0000, size: 0x10_0000, type: .ram),
        ])
        #expect(map.lowestRAMPlacement(size: 0x100, alignment: 0x1000, lowest: 0x1, limit: 1 << 32) == 0x1000)
        #expect(map.lowestRAMPlacement(size: 0x1000, alignment: 0x1000, lowest: 0x9f000, limit: 1 << 32) == 0x10_0000)
        #expect(map.lowestRAMPlacement(size: 0x10_0000, alignment: 0x1000, lowest: 0x10_0001, limit: 1 << 32) == nil)
        #expect(map.lowestRAMPlacement(size: 1, alignment: 0x1000, lowest: 0x1f_f001, limit: 1 << 32) == nil)
        // An empty module may sit at RAM's very end.
        #expect(map.lowestRAMPlacement(size: 0, alignment: 0x1000, lowest: 0x1f_f001, limit: 1 << 32) == 0x20_0000)
        #expect(map.lowestRAMPlacement(size: 0x1000, alignment: 0x1000, lowest: 0x10_0000, limit: 0x10_0800) == nil)
        #expect(map.lowestRAMPlacement(size: 1, alignment: 0x1000, lowest: .max - 5, limit: .max) == nil)
    }
}
