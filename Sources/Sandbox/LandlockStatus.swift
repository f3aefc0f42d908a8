/// What `Sandbox.enableLandlock` did.
public enum LandlockStatus: Sendable, Equatable {
    /// Nothing: `--landlock off`, or a sanitized build (LeakSanitizer reads `/proc` at exit).
    case off
    /// The kernel has no Landlock (`errno`: ENOSYS not built in, EOPNOTSUPP not enabled at boot); the VMM runs unconfined.
    case unsupported(errno: Int32)
    /// Every thread is confined as it starts, with the rights Landlock ABI `abi` knows.
    case enforced(abi: Int)
}
