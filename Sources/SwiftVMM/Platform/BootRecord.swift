import ACPI
import VMCore
import X86Boot

/// How the guest was booted: what a restored machine reports as its image and
/// mode, and what it needs to rebuild the devices whose contents depend on the guest.
struct BootRecord: Codable, Sendable {
    var mode: CPUMode
    var image: LoadedImage
    var acpiTables: ACPITables?
    var mpTable: MPTable?
    var firmwareConfig: FirmwareConfigContents?
}
