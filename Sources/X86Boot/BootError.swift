import GuestMemory
import VMCore

/// Why a guest image could not be loaded or entered.
///
/// Each case names the field and what was expected, so the message can be
/// shown to a user as it is, prefixed with the file's name.
public enum BootError: Error, Hashable, Sendable, CustomStringConvertible {
    case emptyImage
    /// The image (or a segment of it) does not fit in guest RAM at that address.
    case imageOutsideRAM(what: String, address: UInt64, size: UInt64, ramSize: UInt64)
    /// RAM has no free place left around the image for one of the VMM's boot
    /// structures (`what`: the GDT, page tables, stack or boot information) of `size` bytes.
    case noRoomForBootStructures(what: String, size: UInt64)
    /// The entry point is not inside guest RAM (or, for ELF, not inside a loaded segment).
    case entryOutsideImage(entry: UInt64)
    /// Real mode can only start at an offset reachable with CS = 0.
    case realModeEntryTooHigh(entry: UInt64)
    /// A header field has a value we cannot accept.
    case invalidField(field: String, found: UInt64, expected: String)
    /// The file is shorter than a header or table it declares.
    case truncated(what: String, needed: UInt64, available: UInt64)
    /// Guest RAM is too small for the VMM's structures.
    case memoryTooSmall(size: UInt64, minimum: UInt64)
    case memory(GuestMemoryError)
    /// The kernel's boot protocol (setup header `version`) is older than the oldest one supported.
    case unsupportedBootProtocol(version: UInt16, minimum: UInt16)
    /// A kernel command line byte is not printable ASCII (0x20-0x7e); `offset` counts from the line's start.
    case commandLineInvalidCharacter(byte: UInt8, offset: Int)
    /// The kernel command line (without its terminating NUL) is longer than the kernel or the layout accepts.
    case commandLineTooLong(length: Int, capacity: Int)
    /// A range the kernel needs is not inside one RAM entry of the E820 memory map.
    case notUsableRAM(what: String, address: UInt64, size: UInt64)
    /// No page-aligned place in RAM at or above `lowest` and ending at or below `limit` holds the initrd.
    case initrdDoesNotFit(size: UInt64, lowest: UInt64, limit: UInt64)
    /// An E820 entry is empty or wraps past the end of the address space.
    case memoryMapInvalidEntry(address: UInt64, size: UInt64)
    /// Two E820 entries (given by their start addresses) overlap.
    case memoryMapOverlap(first: UInt64, second: UInt64)
    /// The E820 map has more entries than the zero page holds.
    case memoryMapTooManyEntries(count: Int, maximum: Int)
    /// The ELF file has no Xen `XEN_ELFNOTE_PHYS32_ENTRY` note, so it cannot be entered by PVH.
    case pvhEntryNoteMissing
    /// No Multiboot header magic (0x1BADB002, 32-bit aligned) in the image's first 8192 bytes.
    case multibootHeaderMissing
    /// A Multiboot module (`index` from 0) found no place in usable RAM below 4 GiB at or above `lowest`.
    case moduleDoesNotFit(index: Int, size: UInt64, lowest: UInt64)

    public var description: String {
        switch self {
        case .emptyImage:
            return "the image is empty"
        case .imageOutsideRAM(let what, let address, let size, let ramSize):
            return "\(what) (\(size) bytes at \(hex(address))) does not fit in guest RAM (\(ramSize) bytes)"
        case .noRoomForBootStructures(let what, let size):
            return
                "guest RAM has no free \(size) bytes left around the image for \(what) swiftvmm sets up; give the machine more memory or leave some RAM unused by the image"
        case .entryOutsideImage(let entry):
            return "entry point \(hex(entry)) is outside the loaded image"
        case .realModeEntryTooHigh(let entry):
            return "real-mode entry \(hex(entry)) is above 0xffff and cannot be reached with CS = 0"
        case .invalidField(let field, let found, let expected):
            return "\(field) is \(hex(found)), expected \(expected)"
        case .truncated(let what, let needed, let available):
            return "truncated: \(what) needs \(needed) bytes, the file has \(available)"
        case .memoryTooSmall(let size, let minimum):
            return "guest RAM of \(size) bytes is too small; at least \(minimum) bytes are needed"
        case .memory(let error):
            return error.description
        case .unsupportedBootProtocol(let version, let minimum):
            return
                "the kernel's boot protocol is \(protocolVersion(version)) (setup header version \(hex(version))), expected \(protocolVersion(minimum)) or later"
        case .commandLineInvalidCharacter(let byte, let offset):
            return "kernel command line byte \(offset) is \(hex(byte)), expected printable ASCII (0x20-0x7e)"
        case .commandLineTooLong(let length, let capacity):
            return "kernel command line is \(length) bytes, the kernel accepts at most \(capacity)"
        case .notUsableRAM(let what, let address, let size):
            return "\(what) (\(size) bytes at \(hex(address))) is not inside usable RAM of the memory map; give the guest more memory"
        case .initrdDoesNotFit(let size, let lowest, let limit):
            return
                "the initrd (\(size) bytes) does not fit in RAM between \(hex(lowest)) (the kernel's end) and \(hex(limit)) (the end of where it may go); give the guest more memory or use a smaller initrd"
        case .memoryMapInvalidEntry(let address, let size):
            return "E820 entry at \(hex(address)) with size \(hex(size)) is empty or wraps past 2^64"
        case .memoryMapOverlap(let first, let second):
            return "E820 entries at \(hex(first)) and \(hex(second)) overlap"
        case .memoryMapTooManyEntries(let count, let maximum):
            return "the E820 map has \(count) entries, the zero page holds at most \(maximum)"
        case .pvhEntryNoteMissing:
            return
                "the ELF file has no Xen XEN_ELFNOTE_PHYS32_ENTRY note (PT_NOTE, name \"Xen\", type 18), so it has no PVH entry point; build the kernel with CONFIG_PVH=y"
        case .multibootHeaderMissing:
            return "no Multiboot header: the magic 0x1badb002 is not at any 4-byte-aligned offset of the first 8192 bytes"
        case .moduleDoesNotFit(let index, let size, let lowest):
            return
                "Multiboot module \(index) (\(size) bytes) does not fit in usable RAM between \(hex(lowest)) (the end of the kernel and the modules before it) and 4 GiB; give the guest more memory"
        }
    }
}

/// `2.15` for a setup header `version` of 0x020f, `2.06` for 0x0206: how boot.rst writes them.
private func protocolVersion(_ version: UInt16) -> String {
    let minor = version & 0xff
    return "\(version >> 8).\(minor < 10 ? "0" : "")\(minor)"
}
