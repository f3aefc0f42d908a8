internal import CSandbox

#if canImport(Glibc)
    import Glibc
#endif

/// A Landlock ruleset built once, before any thread is confined: threads then
/// only call `landlock_restrict_self` with it as they start, so no seccomp
/// filter needs `landlock_create_ruleset` or `landlock_add_rule`.
struct LandlockRuleset: Sendable {
    /// The ruleset's descriptor, kept open for the threads started later.
    let descriptor: Int32
    /// The rules' `O_PATH` descriptors, kept open too: a rule names an inode,
    /// and a `/proc` file's inode lasts only as long as its dentry, which an
    /// open descriptor pins (a new lookup would make a new inode, no rule's).
    let pathDescriptors: [Int32]

    /// A ruleset handling every right the kernel's `abi` knows, granting
    /// `rules` (each cut to what the ABI knows and, on a file, to file rights).
    /// Throws naming the path that cannot be opened.
    init(rules: [PathRule], abi: Int) throws(SandboxError) {
        let handled = FileAccess.handled(byABI: abi)
        let ruleset = csandbox_landlock_create_ruleset(handled.rawValue)
        guard ruleset >= 0 else { throw .systemCall("landlock_create_ruleset", errno: -ruleset) }
        var paths = [Int32]()
        for rule in rules {
            var isDirectory: Int32 = 0
            let fd = csandbox_open_path(rule.path, &isDirectory)
            guard fd >= 0 else {
                paths.forEach { _ = close($0) }
                _ = close(ruleset)
                throw .landlockPath(rule.path, errno: -fd)
            }
            paths.append(fd)
            var access = rule.access.intersection(handled)
            if isDirectory == 0 { access.formIntersection(.fileRights) }
            let added = csandbox_landlock_add_path_rule(ruleset, fd, access.rawValue)
            guard added == 0 else {
                paths.forEach { _ = close($0) }
                _ = close(ruleset)
                throw .landlockPath(rule.path, errno: -added)
            }
        }
        descriptor = ruleset
        pathDescriptors = paths
    }

    /// Sets `PR_SET_NO_NEW_PRIVS` on the calling thread (and the threads it
    /// starts later), which `landlock_restrict_self` needs without `CAP_SYS_ADMIN`.
    static func forbidNewPrivileges() throws(SandboxError) {
        let result = csandbox_set_no_new_privs()
        guard result == 0 else { throw .systemCall("prctl(PR_SET_NO_NEW_PRIVS)", errno: -result) }
    }

    /// Confines the calling thread, and the threads it starts from now on, to the ruleset.
    func restrictCallingThread() throws(SandboxError) {
        let result = csandbox_landlock_restrict_self(descriptor)
        guard result == 0 else { throw .systemCall("landlock_restrict_self", errno: -result) }
    }
}
