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
    /// The image would overwrite the VMM's GDT or page tables, or leave no room for the stack below it.
    case overlapsVMMStructures(what: String, address: UInt64, size: UInt64)
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

    public var description: String {
        switch self {
        case .emptyImage:
            return "the image is empty"
        case .imageOutsideRAM(let what, let address, let size, let ramSize):
            return "\(what) (\(size) bytes at \(hex(address))) does not fit in guest RAM (\(ramSize) bytes)"
        case .overlapsVMMStructures(let what, let address, let size):
            return
                "\(what) (\(size) bytes at \(hex(address))) overlaps the VMM's GDT, page tables and boot stack below \(hex(X86Layout.minimumProtectedLoadAddress)); load it at \(hex(X86Layout.minimumProtectedLoadAddress)) or above"
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
        }
    }
}
