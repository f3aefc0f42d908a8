/// The `"x-swiftvmm"` object: swiftvmm's features that Firecracker lacks, in
/// a config file (a top-level key) or through `PUT /x-swiftvmm`. Each field
/// is the `MachineSpec` field (and `swiftvmm run` flag) of the same name.
public struct SwiftVMMExtras: StrictResource, Hashable {
    /// A flat binary or ELF64 executable to boot instead of `boot-source`.
    public var guest: String?
    /// The CPU mode a flat binary is entered in: `real`, `protected` or `long`.
    public var mode: String?
    /// Where a flat binary is loaded (hex or decimal).
    public var loadAddress: String?
    /// Where a flat binary is entered (hex or decimal).
    public var entry: String?
    /// CPU features to hide from the guest.
    public var cpuidMask: [String]?
    /// COM2's output: `file:PATH`.
    public var serial2: String?
    /// The debug console's (port 0xe9) output file.
    public var debugcon: String?
    /// Multiboot modules: comma-separated `FILE [ARGS]` (for a Multiboot `kernel_image_path`).
    public var modules: String?

    public init() {}

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case guest, mode
        case loadAddress = "load_address"
        case entry
        case cpuidMask = "cpuid_mask"
        case serial2, debugcon, modules
    }

    /// The JSON key this object has in a config file.
    public static let key = "x-swiftvmm"

    public func validate() throws(APIFault) {
        try Validation.path(guest, field: "guest")
        try Validation.oneOf(mode, ["real", "protected", "long"], field: "mode")
        try Validation.path(debugcon, field: "debugcon")
    }

    /// Whether no field is given.
    public var isEmpty: Bool { self == SwiftVMMExtras() }
}
