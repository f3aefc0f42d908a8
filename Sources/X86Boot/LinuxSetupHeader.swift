import VMCore

/// The setup header of an x86 Linux bzImage, parsed and validated.
///
/// A bzImage starts with the real-mode setup code: a 512-byte boot sector
/// followed by `setup_sects` more sectors. The setup header is at offset 0x1f1
/// of the file and describes the image; the protected-mode kernel follows the
/// setup code. swiftvmm uses the 64-bit boot protocol, so it needs a kernel
/// that loads high (`LOADED_HIGH`) and has a 64-bit entry (`XLF_KERNEL_64`).
/// Field offsets and meanings are from Documentation/arch/x86/boot.rst and
/// `struct setup_header` in arch/x86/include/uapi/asm/bootparam.h.
public struct LinuxSetupHeader: Hashable, Sendable {
    /// Byte offsets into the image (and into `struct boot_params`, which embeds
    /// the setup header at the same offset).
    public enum Offset {
        public static let setupSects = 0x1f1
        public static let syssize = 0x1f4
        public static let bootFlag = 0x1fe
        public static let jump = 0x200
        public static let header = 0x202
        public static let version = 0x206
        public static let kernelVersion = 0x20e
        public static let typeOfLoader = 0x210
        public static let loadflags = 0x211
        public static let code32Start = 0x214
        public static let ramdiskImage = 0x218
        public static let ramdiskSize = 0x21c
        public static let heapEndPtr = 0x224
        public static let cmdLinePtr = 0x228
        public static let initrdAddrMax = 0x22c
        public static let kernelAlignment = 0x230
        public static let relocatableKernel = 0x234
        public static let minAlignment = 0x235
        public static let xloadflags = 0x236
        public static let cmdlineSize = 0x238
        public static let payloadOffset = 0x248
        public static let payloadLength = 0x24c
        public static let prefAddress = 0x258
        public static let initSize = 0x260
        /// Where `struct boot_params` stops leaving room for the setup header
        /// (`edd_mbr_sig_buffer` starts here), so no header may end past it.
        public static let headerLimit = 0x290
    }

    /// `boot_flag` at 0x1fe: the boot-sector signature.
    public static let bootFlagValue: UInt64 = 0xaa55
    /// `header` at 0x202: "HdrS" little-endian.
    public static let headerMagic: UInt64 = 0x5372_6448
    /// The oldest protocol accepted: 2.06 is the first with `cmdline_size`.
    public static let minimumProtocol: UInt16 = 0x0206

    /// `loadflags` bits.
    public static let loadedHigh: UInt8 = 1 << 0
    public static let canUseHeap: UInt8 = 1 << 7
    /// `xloadflags` bits.
    public static let xlfKernel64: UInt16 = 1 << 0
    public static let xlfCanBeLoadedAbove4G: UInt16 = 1 << 1

    /// The boot protocol version (`version`, 0x206), e.g. 0x020f for 2.15.
    public var protocolVersion: UInt16
    /// `setup_sects` with 0 read as 4, as boot.rst says.
    public var setupSectors: Int
    /// Bytes of real-mode code before the protected-mode kernel: `(setup_sects + 1) * 512`.
    public var setupSize: Int
    /// Where the protected-mode kernel is in the image: from `setupSize` to the end of the file.
    public var kernelRange: Range<Int>
    /// `loadflags` (0x211) as found in the image.
    public var loadflags: UInt8
    /// `xloadflags` (0x236, protocol 2.12+).
    public var xloadflags: UInt16
    /// `initrd_addr_max` (0x22c): the highest address the initrd may occupy (its last byte).
    public var initrdAddressMax: UInt32
    /// `cmdline_size` (0x238): the longest command line, without its NUL.
    public var commandLineSize: UInt32
    /// `kernel_alignment` (0x230): a relocatable kernel runs at a multiple of this.
    public var kernelAlignment: UInt32
    /// `relocatable_kernel` (0x234): whether the kernel may be loaded elsewhere than `pref_address`.
    public var relocatable: Bool
    /// `pref_address` (0x258, protocol 2.10+): where the kernel prefers to run.
    public var preferredAddress: UInt64
    /// `init_size` (0x260, protocol 2.10+): the bytes of contiguous memory the
    /// kernel needs from its runtime start before it reads the memory map.
    public var initSize: UInt32
    /// `payload_offset` and `payload_length` (0x248, 0x24c): where the compressed
    /// kernel is, relative to the start of the protected-mode kernel.
    public var payloadOffset: UInt32
    public var payloadLength: UInt32
    /// The kernel's version string (pointed to by `kernel_version`, 0x20e), if it has one.
    public var kernelVersion: String?
    /// The setup header as it is in the image: bytes 0x1f1 up to `0x202 + image[0x201]`.
    /// A boot loader copies exactly these into the zero page at 0x1f1.
    public var rawBytes: [UInt8]

    /// Parses and validates the setup header at the start of `image`.
    public init(parsing image: [UInt8]) throws(BootError) {
        let reader = ByteReader(bytes: image)
        let count = UInt64(image.count)
        guard count >= UInt64(Offset.header + 4) else {
            throw .truncated(what: "the bzImage boot sector and setup header", needed: UInt64(Offset.header + 4), available: count)
        }
        let bootFlag = reader.u16(UInt64(Offset.bootFlag))
        guard bootFlag == Self.bootFlagValue else {
            throw .invalidField(field: "bzImage boot_flag (0x1fe)", found: bootFlag, expected: "0xaa55 (boot-sector signature)")
        }
        let magic = reader.u32(UInt64(Offset.header))
        guard magic == Self.headerMagic else {
            throw .invalidField(field: "bzImage setup header magic (0x202)", found: magic, expected: "0x53726448 (\"HdrS\")")
        }
        let version = UInt16(reader.u16(UInt64(Offset.version)))
        guard version >= Self.minimumProtocol else {
            throw .unsupportedBootProtocol(version: version, minimum: Self.minimumProtocol)
        }
        // The jump at 0x200 is a short jmp over the header: its displacement is the header's length.
        let headerEnd = Offset.header + Int(image[Offset.jump + 1])
        guard headerEnd >= Offset.cmdlineSize + 4, headerEnd <= Offset.headerLimit else {
            throw .invalidField(
                field: "bzImage setup header length (0x201)", found: UInt64(image[Offset.jump + 1]),
                expected:
                    "\(hex(Offset.cmdlineSize + 4 - Offset.header))-\(hex(Offset.headerLimit - Offset.header)) (a header from cmdline_size to boot_params' 0x290)"
            )
        }
        guard count >= UInt64(headerEnd) else {
            throw .truncated(what: "the bzImage setup header", needed: UInt64(headerEnd), available: count)
        }
        // Fields past the header's declared end are absent (older protocol): they read as zero.
        func field(_ offset: Int, _ size: Int) -> UInt64 {
            guard offset + size <= headerEnd else { return 0 }
            switch size {
            case 1: return reader.u8(UInt64(offset))
            case 2: return reader.u16(UInt64(offset))
            case 4: return reader.u32(UInt64(offset))
            default: return reader.u64(UInt64(offset))
            }
        }

        let sectors = image[Offset.setupSects] == 0 ? 4 : Int(image[Offset.setupSects])
        let setupSize = (sectors + 1) * 512
        // syssize counts the protected-mode kernel in 16-byte paragraphs (protocol 2.04+).
        let kernelSize = field(Offset.syssize, 4) * 16
        let needed = UInt64(setupSize) + max(kernelSize, LinuxLayout.entry64Offset + 1)
        guard count >= needed else {
            throw .truncated(
                what: "the bzImage (\(setupSize) bytes of setup code, then a protected-mode kernel of \(kernelSize) bytes)",
                needed: needed, available: count)
        }

        let loadflags = UInt8(field(Offset.loadflags, 1))
        guard loadflags & Self.loadedHigh != 0 else {
            throw .invalidField(
                field: "bzImage loadflags (0x211)", found: UInt64(loadflags), expected: "LOADED_HIGH (bit 0) set: a bzImage loaded at 1 MiB"
            )
        }
        let xloadflags = UInt16(field(Offset.xloadflags, 2))
        guard xloadflags & Self.xlfKernel64 != 0 else {
            throw .invalidField(
                field: "bzImage xloadflags (0x236)", found: UInt64(xloadflags),
                expected: "XLF_KERNEL_64 (bit 0) set: a 64-bit kernel with an entry at +0x200 (protocol 2.12+)")
        }
        let relocatable = field(Offset.relocatableKernel, 1) != 0
        let alignment = UInt32(field(Offset.kernelAlignment, 4))
        if relocatable {
            guard alignment >= 0x1000, alignment & (alignment - 1) == 0 else {
                throw .invalidField(
                    field: "bzImage kernel_alignment (0x230)", found: UInt64(alignment),
                    expected: "a power of two of at least 0x1000 for a relocatable kernel")
            }
        }
        let initSize = UInt32(field(Offset.initSize, 4))
        if version >= 0x020a {
            guard initSize > 0 else {
                throw .invalidField(field: "bzImage init_size (0x260)", found: 0, expected: "non-zero (protocol 2.10+)")
            }
        }
        let cmdlineSize = UInt32(field(Offset.cmdlineSize, 4))
        guard cmdlineSize > 0 else {
            throw .invalidField(field: "bzImage cmdline_size (0x238)", found: 0, expected: "non-zero (protocol 2.06+)")
        }

        protocolVersion = version
        setupSectors = sectors
        self.setupSize = setupSize
        kernelRange = setupSize..<image.count
        self.loadflags = loadflags
        self.xloadflags = xloadflags
        initrdAddressMax = UInt32(field(Offset.initrdAddrMax, 4))
        commandLineSize = cmdlineSize
        kernelAlignment = alignment
        self.relocatable = relocatable
        preferredAddress = field(Offset.prefAddress, 8)
        self.initSize = initSize
        payloadOffset = UInt32(field(Offset.payloadOffset, 4))
        payloadLength = UInt32(field(Offset.payloadLength, 4))
        kernelVersion = Self.versionString(image, pointer: Int(field(Offset.kernelVersion, 2)), setupSize: setupSize)
        rawBytes = Array(image[Offset.setupSects..<headerEnd])
    }

    /// The NUL-terminated string `kernel_version` points to: an offset from
    /// 0x200 into the setup code. `nil` when absent or not printable ASCII.
    private static func versionString(_ image: [UInt8], pointer: Int, setupSize: Int) -> String? {
        guard pointer != 0 else { return nil }
        let start = pointer + 0x200
        guard start < setupSize else { return nil }
        let end = image[start..<setupSize].firstIndex(of: 0) ?? setupSize
        let bytes = image[start..<end]
        guard !bytes.isEmpty, bytes.allSatisfy({ (0x20...0x7e).contains($0) }) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The length of the protected-mode kernel in bytes.
    public var kernelSize: UInt64 { UInt64(kernelRange.count) }

    /// Whether the initrd may be placed above 4 GiB (`XLF_CAN_BE_LOADED_ABOVE_4G`).
    public var canLoadAbove4G: Bool { xloadflags & Self.xlfCanBeLoadedAbove4G != 0 }

    /// Where the kernel will run (decompress itself to) when loaded at `loadAddress`,
    /// by boot.rst's algorithm for `init_size`: a relocatable kernel rounds its load
    /// address up to `kernel_alignment`, and its head code never goes below
    /// `LOAD_PHYSICAL_ADDR`, which it reports as `pref_address`; a fixed kernel runs at `pref_address`.
    public func runtimeStart(loadAddress: UInt64) -> UInt64 {
        guard relocatable else { return preferredAddress }
        let mask = UInt64(kernelAlignment) - 1
        let (sum, overflow) = loadAddress.addingReportingOverflow(mask)
        return max(overflow ? UInt64.max & ~mask : sum & ~mask, preferredAddress)
    }
}
