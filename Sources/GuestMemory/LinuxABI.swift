#if canImport(Glibc)
    import Glibc
#endif

/// Linux constants and calls that Swift's Glibc module does not import,
/// because glibc declares them only under `_GNU_SOURCE`. The values are the
/// kernel's ABI (`<linux/fcntl.h>`, `<linux/memfd.h>`, `<linux/fs.h>`) and never change.
enum LinuxABI {
    /// `F_ADD_SEALS` (`F_LINUX_SPECIFIC_BASE + 9`).
    static let addSeals: Int32 = 1033
    /// `F_SEAL_SEAL`: no further seals can be added.
    static let sealSeal: Int32 = 0x1
    /// `F_SEAL_SHRINK`: the file cannot get smaller (a mapping past the end would fault).
    static let sealShrink: Int32 = 0x2
    /// `F_SEAL_GROW`: the file cannot get larger.
    static let sealGrow: Int32 = 0x4
    /// `F_SEAL_WRITE`: the contents cannot change, through `write` or a shared mapping.
    static let sealWrite: Int32 = 0x8
    /// `F_GET_SEALS` (`F_LINUX_SPECIFIC_BASE + 10`); fails with `EINVAL` on anything but a memfd (or shmem file).
    static let getSeals: Int32 = 1034
    /// `SEEK_DATA`: the next offset at or after the argument that holds data.
    static let seekData: Int32 = 3
    /// `SEEK_HOLE`: the next offset at or after the argument that is a hole (or the end).
    static let seekHole: Int32 = 4
    /// `MFD_CLOEXEC`.
    static let memfdCloseOnExec: UInt32 = 0x1
    /// `MFD_ALLOW_SEALING`: without it a memfd starts out sealed with `F_SEAL_SEAL`.
    static let memfdAllowSealing: UInt32 = 0x2

    /// `FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE`: free a range, the file's size unchanged.
    static let punchHole: Int32 = 0x1 | 0x2

    private typealias Fallocate = @convention(c) (Int32, Int32, off_t, off_t) -> Int32

    /// glibc's `fallocate`, found at run time like `memfd_create`.
    private static let fallocateFunction: Fallocate? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "fallocate64") ?? dlsym(dlopen(nil, RTLD_NOW), "fallocate") else { return nil }
        return unsafeBitCast(symbol, to: Fallocate.self)
    }()

    /// Frees `[offset, offset + length)` of `fd`, keeping its size; returns 0 or -1 with `errno` set.
    /// The corresponding C function is `fallocate` (`FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`).
    static func punchHole(_ fd: Int32, offset: off_t, length: off_t) -> Int32 {
        guard let function = fallocateFunction else {
            errno = ENOSYS
            return -1
        }
        return function(fd, punchHole, offset, length)
    }

    private typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>, UInt32) -> Int32

    /// glibc's `memfd_create` (2.27 and later), found at run time because its
    /// declaration is not imported; `nil` if this libc has none.
    private static let memfdCreateFunction: MemfdCreate? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "memfd_create") else { return nil }
        return unsafeBitCast(symbol, to: MemfdCreate.self)
    }()

    /// Creates an anonymous, sealable, close-on-exec memory file; returns the fd or -1 with `errno` set.
    /// The corresponding C function is `memfd_create`.
    static func memfdCreate(name: String) -> Int32 {
        guard let function = memfdCreateFunction else {
            errno = ENOSYS
            return -1
        }
        return function(name, memfdCloseOnExec | memfdAllowSealing)
    }
}
