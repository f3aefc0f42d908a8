import VMCore

/// A guest assembled from `firmware/` at build time.
///
/// The static members (`FirmwareImage.demo`, `.realHello`, `.longTripleFault`, …)
/// are generated from the folder and file name of each source; `all` lists them.
public struct FirmwareImage: Sendable, Hashable {
    public enum Format: Sendable, Hashable {
        /// Raw bytes to place at `loadAddress` and enter there.
        case flat
        /// An ELF64 executable, loaded by its program headers.
        case elf
        /// A Multiboot (version 1) kernel: ELF32 with a Multiboot header, started
        /// as QEMU's `-kernel` would (on the PC platform, no modules, empty command line).
        case multiboot
    }

    /// The source's path under `firmware/` without `.S`, e.g. `realmode/hello`.
    public var name: String
    /// The mode the guest expects to be entered in.
    public var mode: CPUMode
    /// The address the guest was linked for.
    public var loadAddress: UInt64
    public var format: Format
    public var bytes: [UInt8]
    /// The guest's symbol table as the linker left it: every named label,
    /// global or local (not the assembler's `.L` ones), with its link-time
    /// address, which is where it is in guest memory once loaded. For a test
    /// or a debugger to name code and data instead of hard-coding addresses.
    public var symbols: [String: UInt64]

    public init(name: String, mode: CPUMode, loadAddress: UInt64, format: Format, bytes: [UInt8], symbols: [String: UInt64] = [:]) {
        self.name = name
        self.mode = mode
        self.loadAddress = loadAddress
        self.format = format
        self.bytes = bytes
        self.symbols = symbols
    }

    /// The address of the label `name` in the guest (`_start`, `handler`, …),
    /// or nil if the guest has no such symbol.
    public func symbol(_ name: String) -> UInt64? {
        symbols[name]
    }

    /// The guest whose `name` is `name`, if there is one.
    public static func named(_ name: String) -> FirmwareImage? {
        all.first { $0.name == name }
    }
}
