import Testing
import X86Boot

@Suite struct LinuxSetupHeaderTests {
    /// What Debian's linux-image-amd64 (x86_64 defconfig-like, CONFIG_RELOCATABLE,
    /// CONFIG_PHYSICAL_START and _ALIGN at their defaults) says about itself.
    @Test func parsesTheDebianKernel() throws {
        let (path, image) = try LinuxFixtures.debianKernel()
        let header = try LinuxSetupHeader(parsing: image)
        let sectors = image[0x1f1] == 0 ? 4 : Int(image[0x1f1])

        #expect(header.protocolVersion >= 0x020c, "a 64-bit entry needs protocol 2.12+")
        #expect(header.setupSectors == sectors)
        #expect(header.setupSize == (sectors + 1) * 512)
        #expect(header.kernelRange == (sectors + 1) * 512..<image.count)
        #expect(header.kernelSize == UInt64(image.count - (sectors + 1) * 512))
        #expect(header.loadflags & LinuxSetupHeader.loadedHigh != 0)
        #expect(header.xloadflags & LinuxSetupHeader.xlfKernel64 != 0)
        #expect(header.canLoadAbove4G)
        #expect(header.relocatable)
        #expect(header.kernelAlignment == 0x20_0000)
        #expect(header.preferredAddress == 0x100_0000)
        #expect(header.commandLineSize == 2047)
        #expect(header.initrdAddressMax == 0x7fff_ffff)
        #expect(header.initSize > UInt32(header.kernelSize), "init_size covers the decompressed kernel")
        #expect(header.runtimeStart(loadAddress: 0x10_0000) == 0x100_0000)

        // The raw header runs from 0x1f1 to 0x202 + the jump's displacement.
        let end = 0x202 + Int(image[0x201])
        #expect(header.rawBytes == Array(image[0x1f1..<end]))
        #expect(end <= 0x290)

        // The version string names the same release as the file: vmlinuz-6.1.0-56-amd64 -> "6.1.0-56-amd64 (...".
        let release = String(path.dropFirst("/boot/vmlinuz-".count))
        #expect(header.kernelVersion?.hasPrefix(release + " ") == true, "kernel_version: \(header.kernelVersion ?? "none")")

        // The compressed payload lies inside the protected-mode kernel.
        #expect(Int(header.payloadOffset) + Int(header.payloadLength) <= header.kernelRange.count)
    }

    @Test func rejectsABadBootSectorSignature() throws {
        var image = try LinuxFixtures.debianKernel().bytes
        image[0x1fe] = 0x00
        #expect(
            throws: BootError.invalidField(field: "bzImage boot_flag (0x1fe)", found: 0xaa00, expected: "0xaa55 (boot-sector signature)")
        ) {
            _ = try LinuxSetupHeader(parsing: image)
        }
    }

    @Test func rejectsABadHeaderMagic() throws {
        var image = try LinuxFixtures.debianKernel().bytes
        image[0x205] = UInt8(ascii: "s")  // "HdrS" -> "Hdrs"
        let error = BootError.invalidField(
            field: "bzImage setup header magic (0x202)", found: 0x7372_6448, expected: "0x53726448 (\"HdrS\")")
        #expect(throws: error) { _ = try LinuxSetupHeader(parsing: image) }
        #expect(error.description == "bzImage setup header magic (0x202) is 0x73726448, expected 0x53726448 (\"HdrS\")")
    }

    @Test func rejectsATooOldProtocol() throws {
        var image = try LinuxFixtures.debianKernel().bytes
        image.patch(0x0205, at: 0x206, size: 2)
        let error = BootError.unsupportedBootProtocol(version: 0x0205, minimum: 0x0206)
        #expect(throws: error) { _ = try LinuxSetupHeader(parsing: image) }
        #expect(error.description == "the kernel's boot protocol is 2.05 (setup header version 0x205), expected 2.06 or later")
    }

    @Test func rejectsATruncatedImage() throws {
        let image = try LinuxFixtures.debianKernel().bytes
        let header = try LinuxSetupHeader(parsing: image)
        let syssize = image.littleEndian(at: 0x1f4, size: 4) * 16
        let cut = Array(image.prefix(header.setupSize + 0x1000))
        #expect(
            throws: BootError.truncated(
                what: "the bzImage (\(header.setupSize) bytes of setup code, then a protected-mode kernel of \(syssize) bytes)",
                needed: UInt64(header.setupSize) + syssize, available: UInt64(cut.count))
        ) { _ = try LinuxSetupHeader(parsing: cut) }

        #expect(throws: BootError.truncated(what: "the bzImage boot sector and setup header", needed: 0x206, available: 0x200)) {
            _ = try LinuxSetupHeader(parsing: Array(image.prefix(0x200)))
        }
        #expect(throws: BootError.truncated(what: "the bzImage boot sector and setup header", needed: 0x206, available: 0)) {
            _ = try LinuxSetupHeader(parsing: [])
        }
    }

    @Test func rejectsAKernelWithoutA64BitEntry() throws {
        var image = try LinuxFixtures.debianKernel().bytes
        let flags = image.littleEndian(at: 0x236, size: 2)
        image.patch(flags & ~1, at: 0x236, size: 2)
        #expect(
            throws: BootError.invalidField(
                field: "bzImage xloadflags (0x236)", found: flags & ~1,
                expected: "XLF_KERNEL_64 (bit 0) set: a 64-bit kernel with an entry at +0x200 (protocol 2.12+)")
        ) { _ = try LinuxSetupHeader(parsing: image) }
    }

    @Test func rejectsAKernelThatDoesNotLoadHigh() throws {
        var image = try LinuxFixtures.debianKernel().bytes
        image[0x211] &= ~1
        #expect(
            throws: BootError.invalidField(
                field: "bzImage loadflags (0x211)", found: UInt64(image[0x211]),
                expected: "LOADED_HIGH (bit 0) set: a bzImage loaded at 1 MiB")
        ) { _ = try LinuxSetupHeader(parsing: image) }
    }

    @Test func rejectsAHeaderLengthOutsideBootParams() throws {
        var image = LinuxFixtures.bzImage()
        image[0x201] = 0x90  // header would end at 0x292, past boot_params' 0x290
        #expect(
            throws: BootError.invalidField(
                field: "bzImage setup header length (0x201)", found: 0x90,
                expected: "0x3a-0x8e (a header from cmdline_size to boot_params' 0x290)")
        ) { _ = try LinuxSetupHeader(parsing: image) }
    }

    @Test func rejectsBadAlignmentAndMissingSizes() throws {
        var image = LinuxFixtures.bzImage(kernelAlignment: 0x30_0000)
        #expect(
            throws: BootError.invalidField(
                field: "bzImage kernel_alignment (0x230)", found: 0x30_0000,
                expected: "a power of two of at least 0x1000 for a relocatable kernel")
        ) { _ = try LinuxSetupHeader(parsing: image) }

        image = LinuxFixtures.bzImage(initSize: 0)
        #expect(throws: BootError.invalidField(field: "bzImage init_size (0x260)", found: 0, expected: "non-zero (protocol 2.10+)")) {
            _ = try LinuxSetupHeader(parsing: image)
        }

        image = LinuxFixtures.bzImage(commandLineSize: 0)
        #expect(throws: BootError.invalidField(field: "bzImage cmdline_size (0x238)", found: 0, expected: "non-zero (protocol 2.06+)")) {
            _ = try LinuxSetupHeader(parsing: image)
        }
    }

    @Test func readsASyntheticHeader() throws {
        var image = LinuxFixtures.bzImage(kernelSize: 0x2000, preferredAddress: 0x40_0000, initSize: 0x30_0000)
        let header = try LinuxSetupHeader(parsing: image)
        #expect(header.protocolVersion == 0x020f)
        #expect(header.setupSectors == 1 && header.setupSize == 1024)
        #expect(header.kernelRange == 1024..<1024 + 0x2000)
        #expect(header.preferredAddress == 0x40_0000 && header.initSize == 0x30_0000)
        #expect(header.rawBytes.count == 0x26c - 0x1f1)
        #expect(header.kernelVersion == nil)
        // Relocatable: the runtime start is the load address rounded up to
        // kernel_alignment, never below pref_address.
        #expect(header.runtimeStart(loadAddress: 0x10_0000) == 0x40_0000)
        #expect(header.runtimeStart(loadAddress: 0x50_0000) == 0x60_0000)

        // setup_sects 0 means 4.
        image = [UInt8](repeating: 0, count: 3 * 512) + image
        image.replaceSubrange(0..<0x26c, with: image[3 * 512..<3 * 512 + 0x26c])
        image[0x1f1] = 0
        #expect(try LinuxSetupHeader(parsing: image).setupSize == 5 * 512)
    }
}
