import GuestMemory
import Testing
import VMCore
import X86Boot

@Suite struct LinuxBootLoaderTests {
    static let mib: UInt64 = 1 << 20

    /// Reads `size` bytes of the zero page at `offset` as a little-endian integer.
    func zeroPage(_ memory: borrowing GuestMemory, _ offset: Int, _ size: Int) throws -> UInt64 {
        try memory.read(count: size, at: GuestAddress(LinuxLayout.zeroPage.rawValue + UInt64(offset))).littleEndian(at: 0, size: size)
    }

    @Test func loadsTheDebianKernelAndWritesTheZeroPage() throws {
        let image = try LinuxFixtures.debianKernel().bytes
        let loader = try LinuxBootLoader(bzImage: image)
        let memory = try GuestMemory(size: 128 * Self.mib)
        let map = try LinuxFixtures.pcMemoryMap(size: 128 * Self.mib)
        let commandLine = try KernelCommandLine("console=ttyS0 earlyprintk=serial reboot=k panic=-1 nokaslr")
        let initrd = (0..<(Self.mib + 0x123)).map { UInt8(truncatingIfNeeded: $0 ^ ($0 >> 9)) }

        let plan = try loader.load(commandLine: commandLine, initrd: initrd, memoryMap: map, acpiRSDP: GuestAddress(0xe_0000), into: memory)

        // Entry: 64-bit, 0x200 into the protected-mode kernel at 1 MiB.
        #expect(plan.kernelAddress == GuestAddress(0x10_0000))
        #expect(plan.entry64 == GuestAddress(0x10_0200))
        #expect(plan.zeroPage == GuestAddress(0x7000))
        #expect(plan.stackTop == GuestAddress(0x8ff0))
        #expect(plan.runtimeStart == GuestAddress(0x100_0000))
        #expect(plan.runtimeSize == UInt64(loader.header.initSize))

        // The kernel's bytes are at 1 MiB, both ends of them.
        let kernel = image[loader.header.kernelRange]
        #expect(try memory.read(count: 4096, at: plan.kernelAddress) == Array(kernel.prefix(4096)))
        let tail = GuestAddress(plan.kernelAddress.rawValue + plan.kernelSize - 4096)
        #expect(try memory.read(count: 4096, at: tail) == Array(kernel.suffix(4096)))

        // The initrd: page-aligned, as high as possible below the top of RAM.
        let expectedInitrd = (128 * Self.mib - UInt64(initrd.count)) & ~0xfff
        #expect(plan.initrd == LinuxBootPlan.Blob(address: GuestAddress(expectedInitrd), size: UInt64(initrd.count)))
        #expect(try memory.read(count: initrd.count, at: GuestAddress(expectedInitrd)) == initrd)

        // The command line, NUL-terminated, where cmd_line_ptr says.
        #expect(try memory.read(count: commandLine.bytes.count + 1, at: LinuxLayout.commandLine) == commandLine.bytes + [0])

        // The zero page fields, read back from guest memory.
        #expect(try zeroPage(memory, 0x210, 1) == 0xff, "type_of_loader")
        #expect(try zeroPage(memory, 0x211, 1) == UInt64(loader.header.loadflags | 0x80), "loadflags |= CAN_USE_HEAP")
        #expect(try zeroPage(memory, 0x224, 2) == 0xde00, "heap_end_ptr")
        #expect(try zeroPage(memory, 0x228, 4) == 0x2_0000, "cmd_line_ptr")
        #expect(try zeroPage(memory, 0x0c8, 4) == 0, "ext_cmd_line_ptr")
        #expect(try zeroPage(memory, 0x218, 4) == expectedInitrd, "ramdisk_image")
        #expect(try zeroPage(memory, 0x21c, 4) == UInt64(initrd.count), "ramdisk_size")
        #expect(try zeroPage(memory, 0x0c0, 4) == 0, "ext_ramdisk_image")
        #expect(try zeroPage(memory, 0x0c4, 4) == 0, "ext_ramdisk_size")
        #expect(try zeroPage(memory, 0x070, 8) == 0xe_0000, "acpi_rsdp_addr")
        #expect(try zeroPage(memory, 0x1ef, 1) == 0, "sentinel stays 0: the zero page was built clean")

        // E820: count at 0x1e8, 20-byte entries at 0x2d0.
        #expect(try zeroPage(memory, 0x1e8, 1) == 3)
        let expected: [(UInt64, UInt64, UInt64)] = [(0, 0x9_fc00, 1), (0x9_fc00, 0x6_0400, 2), (0x10_0000, 127 * Self.mib, 1)]
        for (i, (address, size, type)) in expected.enumerated() {
            #expect(try zeroPage(memory, 0x2d0 + 20 * i, 8) == address)
            #expect(try zeroPage(memory, 0x2d0 + 20 * i + 8, 8) == size)
            #expect(try zeroPage(memory, 0x2d0 + 20 * i + 16, 4) == type)
        }
        #expect(try zeroPage(memory, 0x2d0 + 20 * 3, 20) == 0)

        // The rest of the setup header is the image's, byte for byte.
        let written = try memory.read(count: loader.header.rawBytes.count, at: GuestAddress(LinuxLayout.zeroPage.rawValue + 0x1f1))
        let changed = Set([0x210, 0x211, 0x218, 0x219, 0x21a, 0x21b, 0x21c, 0x21d, 0x21e, 0x21f, 0x224, 0x225, 0x228, 0x229, 0x22a, 0x22b])
        for (i, byte) in written.enumerated() where !changed.contains(0x1f1 + i) {
            #expect(byte == loader.header.rawBytes[i], "setup header byte \(0x1f1 + i)")
        }
        #expect(written.littleEndian(at: 0x202 - 0x1f1, size: 4) == 0x5372_6448, "HdrS copied")
    }

    @Test func zeroPageWithoutInitrdOrRSDPLeavesThoseFieldsZero() throws {
        let loader = try LinuxBootLoader(bzImage: LinuxFixtures.bzImage())
        let memory = try GuestMemory(size: 8 * Self.mib)
        try memory.fill(0xaa, count: 0x1000, at: LinuxLayout.zeroPage)
        let plan = try loader.load(commandLine: KernelCommandLine(), memoryMap: LinuxFixtures.pcMemoryMap(size: 8 * Self.mib), into: memory)
        #expect(plan.initrd == nil)
        for (offset, size) in [(0x218, 4), (0x21c, 4), (0x0c0, 4), (0x0c4, 4)] {
            #expect(try zeroPage(memory, offset, size) == 0, "offset \(offset)")
        }
        // Everything before e820_entries (acpi_rsdp_addr included) is zero: the page was cleared first.
        #expect(try memory.read(count: 0x1e8, at: LinuxLayout.zeroPage) == [UInt8](repeating: 0, count: 0x1e8))
        #expect(try memory.read(count: 1, at: LinuxLayout.commandLine) == [0], "an empty command line is a lone NUL")
        #expect(try zeroPage(memory, 0x228, 4) == 0x2_0000)
    }

    @Test func zeroPageEncodesHighAddressesInTheExtFields() throws {
        let header = try LinuxSetupHeader(parsing: LinuxFixtures.bzImage())
        let plan = LinuxBootPlan(
            kernelAddress: GuestAddress(0x10_0000), kernelSize: 0x1000, runtimeStart: GuestAddress(0x20_0000), runtimeSize: 0x10_0000,
            entry64: GuestAddress(0x10_0200), zeroPage: LinuxLayout.zeroPage, commandLine: GuestAddress(0x1_2345_6000),
            commandLineLength: 0, initrd: .init(address: GuestAddress(0x2_8000_0000), size: 0x1_0000_0010),
            stackTop: LinuxLayout.bootStackTop)
        let map = try LinuxFixtures.pcMemoryMap(size: 8 * Self.mib)
        let page = LinuxZeroPage.encode(header: header, plan: plan, memoryMap: map)
        #expect(page.count == 4096)
        #expect(page.littleEndian(at: 0x228, size: 4) == 0x2345_6000 && page.littleEndian(at: 0x0c8, size: 4) == 1)
        #expect(page.littleEndian(at: 0x218, size: 4) == 0x8000_0000 && page.littleEndian(at: 0x0c0, size: 4) == 2)
        #expect(page.littleEndian(at: 0x21c, size: 4) == 0x10 && page.littleEndian(at: 0x0c4, size: 4) == 1)
        #expect(page[0x1e8] == 3)
        #expect(Array(page[0x2d0..<0x2d0 + 60]) == map.encoded)
    }

    // MARK: initrd placement

    /// A synthetic kernel (2 MiB alignment, runs at 2 MiB for 1 MiB) in `ram` bytes of RAM.
    func plan(
        ram: UInt64, initrd: UInt64?, initrdAddressMax: UInt32 = 0x7fff_ffff, reserved: [E820Entry] = [],
        commandLine: KernelCommandLine = KernelCommandLine()
    ) throws -> LinuxBootPlan {
        let loader = try LinuxBootLoader(bzImage: LinuxFixtures.bzImage(initrdAddressMax: initrdAddressMax))
        return try loader.plan(
            commandLine: commandLine, initrdSize: initrd, memoryMap: LinuxFixtures.pcMemoryMap(size: ram, reserved: reserved))
    }

    @Test func initrdThatExactlyFitsGoesRightAfterTheKernel() throws {
        // The kernel occupies up to 3 MiB (runtime 2 MiB + init_size 1 MiB); 5 MiB fill the rest of 8 MiB.
        let fits = try plan(ram: 8 * Self.mib, initrd: 5 * Self.mib)
        #expect(fits.initrd == LinuxBootPlan.Blob(address: GuestAddress(3 * Self.mib), size: 5 * Self.mib))
        #expect(throws: BootError.initrdDoesNotFit(size: 5 * Self.mib + 1, lowest: 3 * Self.mib, limit: 0x8000_0000)) {
            _ = try plan(ram: 8 * Self.mib, initrd: 5 * Self.mib + 1)
        }
    }

    @Test func initrdIsPageAlignedAndEndsByTheTopOfRAM() throws {
        for size: UInt64 in [1, 0xfff, 0x1000, 0x1001, 0x12_3457] {
            let blob = try #require(try plan(ram: 8 * Self.mib, initrd: size).initrd)
            #expect(blob.address.rawValue % 0x1000 == 0)
            #expect(blob.address.rawValue + size <= 8 * Self.mib)
            #expect(blob.address.rawValue + size + 0x1000 > 8 * Self.mib, "as high as possible: \(blob)")
        }
    }

    @Test func initrdStaysBelowInitrdAddrMax() throws {
        // initrd_addr_max is the last byte the initrd may occupy: 6 MiB - 1 here, with RAM to 8 MiB.
        let blob = try #require(try plan(ram: 8 * Self.mib, initrd: 0x1800, initrdAddressMax: 0x5f_ffff).initrd)
        #expect(blob.address == GuestAddress(0x60_0000 - 0x2000))
        #expect(throws: BootError.initrdDoesNotFit(size: 3 * Self.mib + 1, lowest: 3 * Self.mib, limit: 0x60_0000)) {
            _ = try plan(ram: 8 * Self.mib, initrd: 3 * Self.mib + 1, initrdAddressMax: 0x5f_ffff)
        }
    }

    @Test func initrdAvoidsReservedRanges() throws {
        // ACPI tables at the top of RAM: the initrd goes below them.
        let acpi = E820Entry(address: 7 * Self.mib, size: Self.mib, type: .acpi)
        let blob = try #require(try plan(ram: 8 * Self.mib, initrd: 0x10_0000, reserved: [acpi]).initrd)
        #expect(blob.address == GuestAddress(6 * Self.mib))
        // Too large for the RAM left between the kernel and the tables.
        #expect(throws: BootError.initrdDoesNotFit(size: 4 * Self.mib + 1, lowest: 3 * Self.mib, limit: 0x8000_0000)) {
            _ = try plan(ram: 8 * Self.mib, initrd: 4 * Self.mib + 1, reserved: [acpi])
        }
    }

    @Test func initrdThatIsTooLargeOrEmptyIsRejected() throws {
        #expect(throws: BootError.initrdDoesNotFit(size: 64 * Self.mib, lowest: 3 * Self.mib, limit: 0x8000_0000)) {
            _ = try plan(ram: 8 * Self.mib, initrd: 64 * Self.mib)
        }
        #expect(throws: BootError.invalidField(field: "initrd size", found: 0, expected: "at least 1 byte")) {
            _ = try plan(ram: 8 * Self.mib, initrd: 0)
        }
    }

    // MARK: other limits

    @Test func commandLineLongerThanCmdlineSizeIsRejected() throws {
        let loader = try LinuxBootLoader(bzImage: LinuxFixtures.bzImage(commandLineSize: 16))
        let map = try LinuxFixtures.pcMemoryMap(size: 8 * Self.mib)
        _ = try loader.plan(commandLine: KernelCommandLine("0123456789abcdef"), initrdSize: nil, memoryMap: map)
        #expect(throws: BootError.commandLineTooLong(length: 17, capacity: 16)) {
            _ = try loader.plan(commandLine: KernelCommandLine("0123456789abcdefg"), initrdSize: nil, memoryMap: map)
        }
    }

    @Test func ramTooSmallForInitSizeIsRejected() throws {
        let loader = try LinuxBootLoader(bzImage: try LinuxFixtures.debianKernel().bytes)
        let initSize = UInt64(loader.header.initSize)
        #expect(
            throws: BootError.notUsableRAM(
                what: "the kernel's decompression area (init_size from its runtime start)", address: 0x100_0000, size: initSize)
        ) {
            _ = try loader.plan(
                commandLine: KernelCommandLine(), initrdSize: nil, memoryMap: LinuxFixtures.pcMemoryMap(size: 64 * Self.mib))
        }
        // Exactly enough RAM for the decompression area.
        let exact = 0x100_0000 + ((initSize + 0xfff) & ~0xfff)
        _ = try loader.plan(commandLine: KernelCommandLine(), initrdSize: nil, memoryMap: LinuxFixtures.pcMemoryMap(size: exact))
    }

    @Test func kernelOverlappingAReservedRangeIsRejected() throws {
        let loader = try LinuxBootLoader(bzImage: LinuxFixtures.bzImage())
        let map = try LinuxFixtures.pcMemoryMap(size: 8 * Self.mib, reserved: [E820Entry(address: 0x10_0800, size: 0x100, type: .reserved)])
        #expect(throws: BootError.notUsableRAM(what: "the protected-mode kernel", address: 0x10_0000, size: 0x1000)) {
            _ = try loader.plan(commandLine: KernelCommandLine(), initrdSize: nil, memoryMap: map)
        }
    }

    @Test func memoryMapPromisingMoreRAMThanThereIsIsCaughtBeforeWriting() throws {
        let loader = try LinuxBootLoader(bzImage: LinuxFixtures.bzImage())
        let memory = try GuestMemory(size: 4 * Self.mib)
        try memory.fill(0x5a, count: 0x1000, at: LinuxLayout.zeroPage)
        #expect(
            throws: BootError.imageOutsideRAM(what: "the initrd", address: 8 * Self.mib - 0x1000, size: 0x1000, ramSize: 4 * Self.mib)
        ) {
            _ = try loader.load(
                commandLine: KernelCommandLine("quiet"), initrd: [UInt8](repeating: 1, count: 0x1000),
                memoryMap: LinuxFixtures.pcMemoryMap(size: 8 * Self.mib), into: memory)
        }
        #expect(try memory.read(count: 0x1000, at: LinuxLayout.zeroPage) == [UInt8](repeating: 0x5a, count: 0x1000), "nothing written")
        #expect(try memory.read(count: 1, at: LinuxLayout.commandLine) == [0])
    }

    @Test func layoutKeepsClearOfTheVMMStructuresAndTheLowHole() {
        #expect(LinuxLayout.zeroPage.rawValue >= X86Layout.structuresEnd)
        #expect(LinuxLayout.zeroPage.rawValue + LinuxLayout.zeroPageSize <= X86Layout.minimumProtectedLoadAddress)
        #expect(LinuxLayout.bootStackTop.rawValue > X86Layout.minimumProtectedLoadAddress)
        #expect(LinuxLayout.bootStackTop.rawValue % 16 == 0)
        #expect(LinuxLayout.pvhStartInfo.rawValue >= LinuxLayout.bootStackTop.rawValue)
        #expect(
            LinuxLayout.pvhModuleList.rawValue + UInt64(LinuxLayout.pvhMaximumModules * HVMStartInfo.moduleEntrySize)
                <= LinuxLayout.pvhMemoryMap.rawValue)
        #expect(
            LinuxLayout.pvhMemoryMap.rawValue + UInt64(E820Map.maximumEntries * HVMStartInfo.memoryMapEntrySize)
                <= LinuxLayout.commandLine.rawValue)
        #expect(LinuxLayout.commandLine.rawValue + LinuxLayout.commandLineRegionSize <= LinuxLayout.lowRAMEnd)
        #expect(LinuxLayout.kernelLoadAddress.rawValue == LinuxLayout.highMemoryStart)
    }
}
