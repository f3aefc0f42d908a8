/// A minimal encoder for ACPI Machine Language (ACPI 6.5, chapter 20): just
/// enough for named data objects such as `Name (_S5_, Package () { 5, 5, 0, 0 })`.
///
/// Each function returns the encoded bytes of one term, so terms nest the way
/// the ASL they stand for does:
/// ```swift
/// AML.name("_S5_", AML.package([AML.integer(5), AML.integer(5), AML.integer(0), AML.integer(0)]))
/// ```
public enum AML {
    /// `NameOp NameSeg DataRefObject`: binds `object` to a four-character name
    /// in the current scope.
    public static func name(_ name: String, _ object: [UInt8]) -> [UInt8] {
        [nameOp] + nameSeg(name) + object
    }

    /// `PackageOp PkgLength NumElements PackageElementList` for up to 255 elements,
    /// each already encoded (for example with `integer(_:)`).
    public static func package(_ elements: [[UInt8]]) -> [UInt8] {
        precondition(elements.count <= 0xff, "an AML Package holds at most 255 elements")
        let body = [UInt8(elements.count)] + elements.flatMap { $0 }
        return [packageOp] + packageLength(enclosing: body.count) + body
    }

    /// The shortest encoding of an integer constant: `ZeroOp`, `OneOp`, or a
    /// byte, word, dword or qword constant with its prefix.
    public static func integer(_ value: UInt64) -> [UInt8] {
        switch value {
        case 0: return [zeroOp]
        case 1: return [oneOp]
        case ...0xff: return [bytePrefix] + littleEndian(value, count: 1)
        case ...0xffff: return [wordPrefix] + littleEndian(value, count: 2)
        case ...0xffff_ffff: return [dwordPrefix] + littleEndian(value, count: 4)
        default: return [qwordPrefix] + littleEndian(value, count: 8)
        }
    }

    /// A `NameSeg`: exactly four characters, a leading `A`-`Z` or `_` followed by
    /// `A`-`Z`, `0`-`9` or `_`. Names are written in the VMM's source, so a bad
    /// one is a bug and traps.
    public static func nameSeg(_ name: String) -> [UInt8] {
        precondition(isNameSeg(name), "\"\(name)\" is not a four-character AML NameSeg")
        return Array(name.utf8)
    }

    /// Whether `name` is a valid `NameSeg` (see `nameSeg(_:)`).
    public static func isNameSeg(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        let isLead: (UInt8) -> Bool = { (0x41...0x5a).contains($0) || $0 == 0x5f }
        let isName: (UInt8) -> Bool = { isLead($0) || (0x30...0x39).contains($0) }
        return bytes.count == 4 && isLead(bytes[0]) && bytes.dropFirst().allSatisfy(isName)
    }

    /// The `PkgLength` of a term whose contents after the PkgLength are
    /// `contentLength` bytes long. The encoded length counts the PkgLength
    /// bytes themselves: one byte holds up to 63 in bits 0-5; longer lengths
    /// put the number of following bytes in bits 6-7 of the lead byte, the
    /// low nibble in its bits 0-3, and the rest in the following bytes.
    public static func packageLength(enclosing contentLength: Int) -> [UInt8] {
        precondition(contentLength >= 0)
        if contentLength + 1 <= 0x3f {
            return [UInt8(contentLength + 1)]
        }
        for extraBytes in 1...3 {
            let total = contentLength + 1 + extraBytes
            if total < 1 << (4 + 8 * extraBytes) {
                let lead = UInt8(extraBytes << 6) | UInt8(total & 0x0f)
                return [lead] + (0..<extraBytes).map { UInt8(truncatingIfNeeded: total >> (4 + 8 * $0)) }
            }
        }
        preconditionFailure("an AML PkgLength holds at most 2^28 - 1 bytes")
    }

    /// `ScopeOp PkgLength NameString TermList`: opens the namespace scope
    /// `path` (such as `\_SB_`, the system bus) for `terms`.
    public static func scope(_ path: String, _ terms: [UInt8]) -> [UInt8] {
        let body = nameString(path) + terms
        return [scopeOp] + packageLength(enclosing: body.count) + body
    }

    /// `DeviceOp PkgLength NameSeg TermList`: a device object named `name`.
    public static func device(_ name: String, _ terms: [UInt8]) -> [UInt8] {
        let body = nameSeg(name) + terms
        return extOpPrefix + [deviceOp] + packageLength(enclosing: body.count) + body
    }

    /// A device the OS identifies and configures from its names alone:
    /// `Device (name) { Name (_HID, hardwareID), Name (_UID, uniqueID),
    /// Name (_CRS, Buffer { resources }) }`.
    public static func device(_ name: String, hardwareID: String, uniqueID: UInt32, resources: [UInt8]) -> [UInt8] {
        device(
            name,
            self.name("_HID", string(hardwareID)) + self.name("_UID", integer(UInt64(uniqueID)))
                + self.name("_CRS", buffer(resources)))
    }

    /// `StringPrefix AsciiCharList NullChar`.
    public static func string(_ text: String) -> [UInt8] {
        precondition(text.utf8.allSatisfy { (0x01...0x7f).contains($0) }, "AML strings are ASCII without NUL")
        return [stringPrefix] + Array(text.utf8) + [0]
    }

    /// `BufferOp PkgLength BufferSize ByteList`, such as a resource template.
    public static func buffer(_ bytes: [UInt8]) -> [UInt8] {
        let body = integer(UInt64(bytes.count)) + bytes
        return [bufferOp] + packageLength(enclosing: body.count) + body
    }

    /// A `NameString`: a root prefix (`\`) if given, then a NameSeg.
    static func nameString(_ path: String) -> [UInt8] {
        if path.hasPrefix("\\") { return [rootChar] + nameSeg(String(path.dropFirst())) }
        return nameSeg(path)
    }

    static let zeroOp: UInt8 = 0x00
    static let oneOp: UInt8 = 0x01
    static let nameOp: UInt8 = 0x08
    static let bytePrefix: UInt8 = 0x0a
    static let wordPrefix: UInt8 = 0x0b
    static let dwordPrefix: UInt8 = 0x0c
    static let qwordPrefix: UInt8 = 0x0e
    static let packageOp: UInt8 = 0x12
    static let scopeOp: UInt8 = 0x10
    static let bufferOp: UInt8 = 0x11
    static let stringPrefix: UInt8 = 0x0d
    static let extOpPrefix: [UInt8] = [0x5b]
    static let deviceOp: UInt8 = 0x82
    static let rootChar: UInt8 = 0x5c

    private static func littleEndian(_ value: UInt64, count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }
}
