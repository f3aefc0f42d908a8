internal import CSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// What the VMM gives up once its files, sockets and threads are open:
/// another root (`--chroot`), root itself (`--user`), every capability,
/// core dumps, and more open files or threads than it needs.
public struct Privileges: Sendable {
    /// The user and group to run as (`--user UID:GID`), or `nil` to stay who we are.
    public var user: (uid: uid_t, gid: gid_t)?
    /// The directory to make the root (`--chroot DIR`), or `nil`.
    public var chrootDirectory: String?
    /// Whether the process may dump core (`--core-dumps`); guest RAM is never in a dump (MADV_DONTDUMP).
    public var coreDumps = false
    /// Whether to drop every capability even without `--user` (a root VMM
    /// keeps its uid, and with it the files it owns, but no privilege).
    public var dropCapabilities = true
    /// The most open files the process may have (`RLIMIT_NOFILE`).
    public var maximumOpenFiles: UInt64 = 4096
    /// The most processes and threads the user may have (`RLIMIT_NPROC`), set with `--user` only (root ignores it).
    public var maximumThreads: UInt64 = 1024

    public init() {}

    /// Parses `--user`'s `UID:GID` (or `UID`, which is also the group); `nil` if it is not that.
    public static func parseUser(_ text: String) -> (uid: uid_t, gid: gid_t)? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let uid = uid_t(parts[0]) else { return nil }
        guard parts.count == 2 else { return (uid, uid) }
        guard let gid = gid_t(parts[1]) else { return nil }
        return (uid, gid)
    }

    /// Applies everything, in the order that works: limits, the new root,
    /// the group list, the group, the user, the capabilities; then checks
    /// that no capability is left. Throws naming the call that failed.
    public func apply() throws(SandboxError) {
        if !coreDumps { try lower(CSANDBOX_LIMIT_CORE, 0, "setrlimit(RLIMIT_CORE)") }
        try lower(CSANDBOX_LIMIT_OPEN_FILES, maximumOpenFiles, "setrlimit(RLIMIT_NOFILE)")
        if let chrootDirectory {
            guard chroot(chrootDirectory) == 0 else { throw .systemCall("chroot(\(chrootDirectory))", errno: errno) }
            guard chdir("/") == 0 else { throw .systemCall("chdir(/)", errno: errno) }
        }
        if dropCapabilities || user != nil {
            // EPERM: not root (no CAP_SETPCAP), so there is no bounding set to speak of.
            let result = csandbox_drop_bounding_capabilities()
            guard result == 0 || result == -EPERM else { throw .systemCall("prctl(PR_CAPBSET_DROP)", errno: -result) }
        }
        if let (uid, gid) = user {
            try lower(CSANDBOX_LIMIT_PROCESSES, maximumThreads, "setrlimit(RLIMIT_NPROC)")
            // Leaving uid 0 clears the permitted and effective sets (no SECBIT_KEEP_CAPS).
            var step: UnsafePointer<CChar>?
            let result = csandbox_switch_user(uid, gid, &step)
            guard result == 0 else {
                throw .systemCall("\(step.map { String(cString: $0) } ?? "setresuid")(\(uid):\(gid))", errno: -result)
            }
        }
        if dropCapabilities || user != nil {
            let result = csandbox_clear_capabilities()
            guard result == 0 else { throw .systemCall("capset", errno: -result) }
            let effective = csandbox_effective_capabilities()
            guard effective == 0 else { throw .capabilitiesRemain("CapEff \(String(effective, radix: 16))") }
        }
    }

    private func lower(_ limit: csandbox_limit, _ value: UInt64, _ name: String) throws(SandboxError) {
        let result = csandbox_lower_limit(limit, value)
        guard result == 0 else { throw .systemCall(name, errno: -result) }
    }
}
