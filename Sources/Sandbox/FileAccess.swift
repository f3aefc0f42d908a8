/// File-system rights a Landlock rule grants: the kernel's
/// `LANDLOCK_ACCESS_FS_*` bits (linux/landlock.h), by ABI version.
public struct FileAccess: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let execute = FileAccess(rawValue: 1 << 0)
    public static let writeFile = FileAccess(rawValue: 1 << 1)
    public static let readFile = FileAccess(rawValue: 1 << 2)
    public static let readDirectory = FileAccess(rawValue: 1 << 3)
    public static let removeDirectory = FileAccess(rawValue: 1 << 4)
    public static let removeFile = FileAccess(rawValue: 1 << 5)
    public static let makeCharacterDevice = FileAccess(rawValue: 1 << 6)
    public static let makeDirectory = FileAccess(rawValue: 1 << 7)
    public static let makeRegular = FileAccess(rawValue: 1 << 8)
    public static let makeSocket = FileAccess(rawValue: 1 << 9)
    public static let makeFIFO = FileAccess(rawValue: 1 << 10)
    public static let makeBlockDevice = FileAccess(rawValue: 1 << 11)
    public static let makeSymlink = FileAccess(rawValue: 1 << 12)
    /// ABI 2: link or rename into another directory.
    public static let refer = FileAccess(rawValue: 1 << 13)
    /// ABI 3: truncate (`truncate`, `ftruncate`, `O_TRUNC`).
    public static let truncate = FileAccess(rawValue: 1 << 14)
    /// ABI 5: `ioctl` on a character or block device opened after the restriction.
    public static let ioctlDevice = FileAccess(rawValue: 1 << 15)

    /// Reading files and listing directories.
    public static let read: FileAccess = [.readFile, .readDirectory]
    /// Reading, and writing, creating, truncating, replacing and removing
    /// files and directories (a snapshot's `.partial` file renamed into place).
    public static let readWrite: FileAccess = [
        .read, .writeFile, .truncate, .makeRegular, .makeDirectory, .removeFile, .removeDirectory,
    ]
    /// The rights a rule on a file (not a directory) may carry.
    public static let fileRights: FileAccess = [.execute, .writeFile, .readFile, .truncate, .ioctlDevice]

    /// Every right the kernel's Landlock `abi` knows: what a ruleset handles
    /// (denies unless a rule grants it). 0 (no Landlock) knows none.
    public static func handled(byABI abi: Int) -> FileAccess {
        guard abi >= 1 else { return [] }
        var access = FileAccess(rawValue: (1 << 13) - 1)
        if abi >= 2 { access.insert(.refer) }
        if abi >= 3 { access.insert(.truncate) }
        if abi >= 5 { access.insert(.ioctlDevice) }
        return access
    }
}
