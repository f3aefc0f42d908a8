import Foundation
import GuestMemory
import Testing
import VMCore
import X86Boot

/// An ELF note: owner name (NUL added), type, descriptor.
struct PVHTestNote {
    var name: String
    var type: UInt32
    var descriptor: [UInt8]

    /// The note as it sits in a PT_NOTE segment: namesz, descsz, type, then name and descriptor each padded to 4.
    var encoded: [UInt8] {
        func le<T: BinaryInteger>(_ value: T, _ size: Int) -> [UInt8] { LinuxFixtures.le(value, size) }
        let nameBytes = Array(name.utf8) + [0]
        func padded(_ bytes: [UInt8]) -> [UInt8] { bytes + [UInt8](repeating: 0, count: (4 - bytes.count % 4) % 4) }
        return le(nameBytes.count, 4) + le(descriptor.count, 4) + le(type, 4) + padded(nameBytes) + padded(descriptor)
    }

    /// A `Xen` `XEN_ELFNOTE_PHYS32_ENTRY` note with an 8-byte descriptor, as Linux emits it.
    static func phys32Entry(_ entry: UInt64, size: Int = 8) -> PVHTestNote {
        PVHTestNote(name: "Xen", type: 18, descriptor: LinuxFixtures.le(entry, size))
    }
}

/// A minimal ELF64 vmlinux: one PT_LOAD of `code` (then zeroed to `memsz`) at
/// `loadAddress`, one PT_NOTE holding `notes`.
func makePVHELF(notes: [PVHTestNote], loadAddress: UInt64 = 0x100_0000, code: [UInt8] = [0xfc, 0xfa, 0xf4], memsz: UInt64 = 0x2000)
    -> [UInt8]
{
    func le<T: BinaryInteger>(_ value: T, _ size: Int) -> [UInt8] { LinuxFixtures.le(value, size) }
    let noteBytes = notes.flatMap(\.encoded)
    let noteOffset = 64 + 2 * 56
    let codeOffset = noteOffset + noteBytes.count
    var header: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8)
    header += le(2, 2) + le(62, 2) + le(1, 4) + le(loadAddress, 8) + le(64, 8) + le(0, 8)
    header += le(0, 4) + le(64, 2) + le(56, 2) + le(2, 2) + le(64, 2) + le(0, 2) + le(0, 2)
    let load =
        le(1, 4) + le(5, 4) + le(codeOffset, 8) + le(loadAddress, 8) + le(loadAddress, 8) + le(code.count, 8) + le(memsz, 8) + le(0x1000, 8)
    let note = le(4, 4) + le(4, 4) + le(noteOffset, 8) + le(0, 8) + le(0, 8) + le(noteBytes.count, 8) + le(noteBytes.count, 8) + le(4, 8)
    return header + load + note + noteBytes + code
}

@Suite struct PVHImageTests {
    static let mib: UInt64 = 1 << 20
    /// File offset of the synthetic ELF's note segment.
    static let noteOffset = 64 + 2 * 56

    @Test func findsThePhys32EntryAmongOtherNotes() throws {
        let notes = [
            PVHTestNote(name: "GNU", type: 3, descriptor: [UInt8](repeating: 0xab, count: 20)),
            PVHTestNote(name: "Xen", type: 17, descriptor: [1, 0x88, 0, 0]),
            PVHTestNote(name: "Linux", type: 18, descriptor: LinuxFixtures.le(0x100_0002, 8)),  // right type, wrong owner
            .phys32Entry(0x100_0001),
        ]
        let image = try PVHImage(parsing: makePVHELF(notes: notes))
        #expect(image.entry32 == 0x100_0001)
        #expect(image.elf.entry == 0x100_0000)
        #expect(try PVHImage(parsing: makePVHELF(notes: [.phys32Entry(0x100_0010, size: 4)])).entry32 == 0x100_0010)
    }

    @Test func rejectsAKernelWithoutTheNote() throws {
        #expect(throws: BootError.pvhEntryNoteMissing) { _ = try PVHImage(parsing: makePVHELF(notes: [])) }
        #expect(throws: BootError.pvhEntryNoteMissing) {
            _ = try PVHImage(parsing: makePVHELF(notes: [PVHTestNote(name: "Xe", type: 18, descriptor: [0, 0, 0, 1])]))
        }
        #expect(throws: BootError.pvhEntryNoteMissing) { _ = try PVHImage(parsing: makeELF()) }
    }

    @Test func rejectsBadEntryNotes() throws {
        #expect(throws: BootError.invalidField(field: "XEN_ELFNOTE_PHYS32_ENTRY descriptor size", found: 2, expected: "4 or 8 bytes")) {
            _ = try PVHImage(parsing: makePVHELF(notes: [PVHTestNote(name: "Xen", type: 18, descriptor: [0, 1])]))
        }
        #expect(throws: BootError.entryOutsideImage(entry: 0x500_0000)) {
            _ = try PVHImage(parsing: makePVHELF(notes: [.phys32Entry(0x500_0000)]))
        }
        #expect(
            throws: BootError.invalidField(field: "XEN_ELFNOTE_PHYS32_ENTRY", found: 0x1_0000_0000, expected: "a 32-bit physical address")
        ) {
            _ = try PVHImage(parsing: makePVHELF(notes: [.phys32Entry(0x1_0000_0000)]))
        }
    }

    @Test func rejectsTruncatedNotes() throws {
        var image = makePVHELF(notes: [.phys32Entry(0x100_0000)])
        let end = UInt64(Self.noteOffset + 24)  // 12-byte note header, "Xen\0", 8-byte descriptor
        image.patch(0x1000, at: Self.noteOffset + 4, size: 4)  // descsz runs past the segment
        #expect(
            throws: BootError.truncated(
                what: "ELF note at file offset 0xb0 (program header 1)", needed: UInt64(Self.noteOffset + 16 + 0x1000), available: end)
        ) { _ = try PVHImage(parsing: image) }

        image = makePVHELF(notes: [.phys32Entry(0x100_0000)])
        image.patch(0x10_0000, at: 64 + 56 + 32, size: 8)  // PT_NOTE p_filesz past the end of the file
        #expect(
            throws: BootError.truncated(
                what: "ELF note segment (program header 1)", needed: UInt64(Self.noteOffset) + 0x10_0000, available: UInt64(image.count))
        ) { _ = try PVHImage(parsing: image) }
    }

    @Test func loadsAndWritesTheStartInfo() throws {
        let code: [UInt8] = [0xfc, 0xfa, 0xf4]
        let image = try PVHImage(parsing: makePVHELF(notes: [.phys32Entry(0x100_0000)], code: code, memsz: 0x3000))
        let memory = try GuestMemory(size: 32 * Self.mib)
        try memory.fill(0xee, count: 0x3000, at: GuestAddress(0x100_0000))
        let map = try LinuxFixtures.pcMemoryMap(size: 32 * Self.mib)
        let initrd = (0..<0x2345).map { UInt8(truncatingIfNeeded: $0) }
        let line = try KernelCommandLine("console=ttyS0 nokaslr")

        let plan = try image.load(commandLine: line, initrd: initrd, memoryMap: map, acpiRSDP: GuestAddress(0xe_0000), into: memory)

        let initrdAddress = (32 * Self.mib - 0x2345) & ~0xfff
        #expect(plan.entry32 == GuestAddress(0x100_0000))
        #expect(plan.startInfo == GuestAddress(0x9000))
        #expect(plan.kernelStart == GuestAddress(0x100_0000) && plan.kernelEnd == GuestAddress(0x100_3000))
        #expect(plan.initrd == LinuxBootPlan.Blob(address: GuestAddress(initrdAddress), size: 0x2345))
        #expect(try memory.read(count: 0x3000, at: GuestAddress(0x100_0000)) == code + [UInt8](repeating: 0, count: 0x3000 - code.count))
        #expect(try memory.read(count: initrd.count, at: GuestAddress(initrdAddress)) == initrd)
        #expect(try memory.read(count: line.bytes.count + 1, at: LinuxLayout.commandLine) == line.nulTerminated)

        // struct hvm_start_info, field by field.
        let info = try memory.read(count: 0x38, at: LinuxLayout.pvhStartInfo)
        #expect(info.littleEndian(at: 0x00, size: 4) == 0x336e_c578, "magic")
        #expect(info.littleEndian(at: 0x04, size: 4) == 1, "version")
        #expect(info.littleEndian(at: 0x08, size: 4) == 0, "flags")
        #expect(info.littleEndian(at: 0x0c, size: 4) == 1, "nr_modules")
        #expect(info.littleEndian(at: 0x10, size: 8) == 0x9800, "modlist_paddr")
        #expect(info.littleEndian(at: 0x18, size: 8) == 0x2_0000, "cmdline_paddr")
        #expect(info.littleEndian(at: 0x20, size: 8) == 0xe_0000, "rsdp_paddr")
        #expect(info.littleEndian(at: 0x28, size: 8) == 0xa000, "memmap_paddr")
        #expect(info.littleEndian(at: 0x30, size: 4) == 3, "memmap_entries")
        #expect(info.littleEndian(at: 0x34, size: 4) == 0, "reserved")

        // The initrd is module 0.
        let module = try memory.read(count: 32, at: LinuxLayout.pvhModuleList)
        #expect(module.littleEndian(at: 0, size: 8) == initrdAddress)
        #expect(module.littleEndian(at: 8, size: 8) == 0x2345)
        #expect(module.littleEndian(at: 16, size: 8) == 0 && module.littleEndian(at: 24, size: 8) == 0)

        // The memory map: 24-byte entries, the E820 map's.
        let table = try memory.read(count: 3 * 24, at: LinuxLayout.pvhMemoryMap)
        for (i, entry) in map.entries.enumerated() {
            #expect(table.littleEndian(at: 24 * i, size: 8) == entry.address)
            #expect(table.littleEndian(at: 24 * i + 8, size: 8) == entry.size)
            #expect(table.littleEndian(at: 24 * i + 16, size: 4) == UInt64(entry.type.rawValue))
            #expect(table.littleEndian(at: 24 * i + 20, size: 4) == 0)
        }
    }

    @Test func startInfoWithoutModulesHasNoModuleList() throws {
        let map = try LinuxFixtures.pcMemoryMap(size: 4 * Self.mib)
        let info = HVMStartInfo(commandLine: nil, memoryMap: map)
        let bytes = info.encoded(moduleList: LinuxLayout.pvhModuleList, memoryMapTable: LinuxLayout.pvhMemoryMap)
        #expect(bytes.count == 56)
        #expect(bytes.littleEndian(at: 0x0c, size: 4) == 0 && bytes.littleEndian(at: 0x10, size: 8) == 0)
        #expect(bytes.littleEndian(at: 0x18, size: 8) == 0 && bytes.littleEndian(at: 0x20, size: 8) == 0)
        #expect(info.encodedModules.isEmpty)
        #expect(info.encodedMemoryMap.count == 3 * 24)

        let memory = try GuestMemory(size: 4 * Self.mib)
        let tooMany = HVMStartInfo(
            modules: Array(repeating: HVMStartInfo.Module(address: GuestAddress(0x20_0000), size: 1), count: 65), commandLine: nil,
            memoryMap: map)
        #expect(throws: BootError.invalidField(field: "hvm_start_info nr_modules", found: 65, expected: "at most 64")) {
            try tooMany.write(into: memory)
        }
    }

    @Test func initrdThatDoesNotFitAboveTheKernelIsRejected() throws {
        let image = try PVHImage(parsing: makePVHELF(notes: [.phys32Entry(0x100_0000)]))
        let memory = try GuestMemory(size: 20 * Self.mib)
        let map = try LinuxFixtures.pcMemoryMap(size: 20 * Self.mib)
        let initrd = [UInt8](repeating: 1, count: Int(4 * Self.mib))
        #expect(throws: BootError.initrdDoesNotFit(size: 4 * Self.mib, lowest: 0x100_2000, limit: 1 << 32)) {
            _ = try image.load(commandLine: KernelCommandLine(), initrd: initrd, memoryMap: map, into: memory)
        }
        #expect(try memory.read(count: 3, at: GuestAddress(0x100_0000)) == [0, 0, 0], "nothing written")
    }

    /// The real thing: Debian's bzImage unpacked by scripts/extract-vmlinux.sh.
    @Test func extractsAndLoadsTheDebianVmlinux() throws {
        let (path, _) = try LinuxFixtures.debianKernel()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-pvh-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("vmlinux").path
        let (status, stderr) = try runExtractScript(path, output)
        #expect(status == 0, "extract-vmlinux.sh failed: \(stderr)")
        let vmlinux = try LinuxFixtures.readFile(output)

        let image = try PVHImage(parsing: vmlinux)
        // Linux links itself at CONFIG_PHYSICAL_START (16 MiB) and puts pvh_start_xen in .text.
        let first = try #require(image.elf.segments.first)
        #expect(first.physicalAddress == 0x100_0000)
        #expect(UInt64(image.entry32) > first.physicalAddress && UInt64(image.entry32) < first.physicalAddress + first.memorySize)

        let memory = try GuestMemory(size: 128 * Self.mib)
        let map = try LinuxFixtures.pcMemoryMap(size: 128 * Self.mib)
        let plan = try image.load(
            commandLine: KernelCommandLine("console=ttyS0"), initrd: [UInt8](repeating: 7, count: 0x1000), memoryMap: map, into: memory)
        #expect(plan.entry32 == GuestAddress(UInt64(image.entry32)))
        #expect(plan.initrd?.address == GuestAddress(128 * Self.mib - 0x1000))
        #expect(try memory.readInteger(at: LinuxLayout.pvhStartInfo, as: UInt32.self) == 0x336e_c578)
        // pvh_start_xen's first instruction is `cld`.
        #expect(try memory.read(count: 1, at: plan.entry32) == [0xfc])
    }

    @Test func extractScriptFailsClearlyOnANonKernel() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-pvh-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("not-a-kernel").path
        #expect(FileManager.default.createFile(atPath: input, contents: Data(repeating: 0x41, count: 4096)))
        let (status, stderr) = try runExtractScript(input, directory.appendingPathComponent("out").path)
        #expect(status == 65)
        #expect(stderr.contains("no compressed ELF kernel found in \(input)"))
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("out").path))
    }

    func runExtractScript(_ input: String, _ output: String) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [LinuxFixtures.packageRoot.appendingPathComponent("scripts/extract-vmlinux.sh").path, input, output]
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let stderr = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, stderr)
    }
}
