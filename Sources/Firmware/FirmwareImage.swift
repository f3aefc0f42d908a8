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

    public init(name: String, mode: CPUMode, loadAddress: UInt64, format: Format, bytes: [UInt8]) {
        self.name = name
        self.mode = mode
        self.loadAddress = loadAddress
        self.format = format
        self.bytes = bytes
    }

    /// The guest whose `name` is `name`, if there is one.
    public static func named(_ name: String) -> FirmwareImage? {
        all.first { $0.name == name }
    }
}
