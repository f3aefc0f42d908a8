import VMCore

/// The Multiboot (version 1) header of an OS image, found and validated.
///
/// From the Multiboot Specification 0.6.96, section 3.1: the header is a
/// 32-bit-aligned structure entirely inside the image's first 8192 bytes,
///
/// ```
/// offset  field          needed when
///  0      magic          always: 0x1BADB002
///  4      flags          always
///  8      checksum       always: magic + flags + checksum = 0 (mod 2^32)
/// 12      header_addr    flags bit 16 (the "a.out kludge" address fields)
/// 16      load_addr      flags bit 16
/// 20      load_end_addr  flags bit 16
/// 24      bss_end_addr   flags bit 16
/// 28      entry_addr     flags bit 16
/// 32      mode_type      flags bit 2 (preferred video mode)
/// 36      width          flags bit 2
/// 40      height         flags bit 2
/// 44      depth          flags bit 2
/// ```
///
/// Flags bits 0-15 are requirements: a boot loader that does not know one
/// of them must refuse the image. Bits 16-31 are optional features.
public struct MultibootHeader: Hashable, Sendable {
    /// `magic`: what marks the header.
    public static let magic: UInt32 = 0x1bad_b002
    /// The header must lie entirely inside this many bytes from the image's start.
    public static let searchLimit = 8192
    /// The header is 32-bit aligned.
    public static let alignment = 4

    /// Flag bit 0: boot modules must be loaded on 4 KiB page boundaries.
    public static let pageAlignModules: UInt32 = 1 << 0
    /// Flag bit 1: `mem_lower`/`mem_upper` (and the memory map, if the loader has one) must be provided.
    public static let memoryInfo: UInt32 = 1 << 1
    /// Flag bit 2: the video mode table must be available (the kernel states a preferred mode).
    public static let videoMode: UInt32 = 1 << 2
    /// Flag bit 16: the address fields at offsets 12-28 are valid and override the executable's own headers.
    public static let addressFields: UInt32 = 1 << 16
    /// The required bits (0-15) swiftvmm understands; any other set required bit makes it refuse the image.
    public static let supportedRequiredFlags: UInt32 = pageAlignModules | memoryInfo | videoMode
    /// Bits 0-15, the requirements.
    public static let requiredFlagsMask: UInt32 = 0xffff

    /// The address fields (flags bit 16), all physical addresses.
    public struct AddressFields: Hashable, Sendable {
        /// Where the header's first byte goes; ties file offsets to addresses.
        public var headerAddress: UInt32
        /// Where the first byte to load goes; at most `headerAddress`.
        public var loadAddress: UInt32
        /// One past the last byte to load; 0 means "to the end of the file".
        public var loadEndAddress: UInt32
        /// One past the end of the zero-filled `.bss`; 0 means no `.bss`.
        public var bssEndAddress: UInt32
        /// Where execution starts.
        public var entryAddress: UInt32
    }

    /// The preferred video mode (flags bit 2).
    public struct VideoMode: Hashable, Sendable {
        /// 0 linear graphics, 1 EGA text.
        public var modeType: UInt32
        public var width: UInt32
        public var height: UInt32
        public var depth: UInt32
    }

    /// The header's offset in the image.
    public var offset: Int
    public var flags: UInt32
    /// Present when flags bit 16 is set.
    public var addressFields: AddressFields?
    /// Present when flags bit 2 is set.
    public var videoMode: VideoMode?

    /// Whether flags bit 0 asks for page-aligned modules.
    public var requiresPageAlignedModules: Bool { flags & Self.pageAlignModules != 0 }
    /// Whether flags bit 1 asks for memory information.
    public var requiresMemoryInfo: Bool { flags & Self.memoryInfo != 0 }

    /// The offset of the first 32-bit-aligned Multiboot magic in the image's
    /// first 8192 bytes, or `nil`: how an image is recognised as Multiboot,
    /// before anything else in the header is checked.
    public static func find(in image: [UInt8]) -> Int? {
        let reader = ByteReader(bytes: image)
        let end = min(image.count, searchLimit) - 12
        guard end >= 0 else { return nil }
        for offset in stride(from: 0, through: end, by: alignment) where reader.u32(UInt64(offset)) == UInt64(magic) {
            return offset
        }
        return nil
    }

    /// Finds the header and validates it: checksum, required flags, and that
    /// every field its flags make valid lies inside the file and the first 8192 bytes.
    public init(parsing image: [UInt8]) throws(BootError) {
        guard let offset = Self.find(in: image) else { throw .multibootHeaderMissing }
        let reader = ByteReader(bytes: image)
        let at = UInt64(offset)
        let flags = UInt32(reader.u32(at + 4))
        let checksum = UInt32(reader.u32(at + 8))
        let expected = 0 &- (Self.magic &+ flags)
        guard checksum == expected else {
            throw .invalidField(
                field: "Multiboot header checksum (at file offset \(hex(UInt64(offset + 8))))", found: UInt64(checksum),
                expected: "\(hex(expected)), so that magic + flags + checksum = 0 (mod 2^32)")
        }
        let unsupported = flags & Self.requiredFlagsMask & ~Self.supportedRequiredFlags
        guard unsupported == 0 else {
            throw .invalidField(
                field: "Multiboot header flags", found: UInt64(flags),
                expected: "no required bit (0-15) other than 0, 1 and 2; bits \(hex(unsupported)) are not supported")
        }
        // How much of the header the flags make valid.
        let length = flags & Self.videoMode != 0 ? 48 : flags & Self.addressFields != 0 ? 32 : 12
        guard offset + length <= image.count else {
            throw .truncated(
                what: "the Multiboot header (flags \(hex(flags)))", needed: UInt64(offset + length), available: UInt64(image.count))
        }
        guard offset + length <= Self.searchLimit else {
            throw .invalidField(
                field: "Multiboot header offset", found: UInt64(offset),
                expected: "a \(length)-byte header (flags \(hex(flags))) entirely inside the first 8192 bytes")
        }
        self.offset = offset
        self.flags = flags
        if flags & Self.addressFields != 0 {
            addressFields = AddressFields(
                headerAddress: UInt32(reader.u32(at + 12)), loadAddress: UInt32(reader.u32(at + 16)),
                loadEndAddress: UInt32(reader.u32(at + 20)), bssEndAddress: UInt32(reader.u32(at + 24)),
                entryAddress: UInt32(reader.u32(at + 28)))
        }
        if flags & Self.videoMode != 0 {
            videoMode = VideoMode(
                modeType: UInt32(reader.u32(at + 32)), width: UInt32(reader.u32(at + 36)), height: UInt32(reader.u32(at + 40)),
                depth: UInt32(reader.u32(at + 44)))
        }
    }
}
