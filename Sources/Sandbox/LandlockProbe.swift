#if DEBUG
    import Synchronization

    #if canImport(Glibc)
        import Glibc
    #endif

    /// The Landlock test hook (debug builds only):
    /// `SWIFTVMM_LANDLOCK_TEST_PROBE=KIND:read|create:PATH` makes the first
    /// thread of that kind (`process`: the main thread) open PATH right after
    /// it is confined, read-only or created for writing, and report
    /// `landlock probe: the KIND thread 'NAME': read|create PATH: OK|errno N`
    /// on stderr. `SandboxCLITests` expects `EACCES` outside the reachable paths.
    enum LandlockProbe {
        private static let done = Mutex(false)

        static func runIfAsked(by kind: ThreadKind, name: String) {
            guard let value = getenv("SWIFTVMM_LANDLOCK_TEST_PROBE") else { return }
            let parts = String(cString: value).split(separator: ":", maxSplits: 2).map(String.init)
            guard parts.count == 3, parts[0] == kind.rawValue else { return }
            let first = done.withLock { done in
                defer { done = true }
                return !done
            }
            guard first else { return }
            let create = parts[1] == "create"
            let fd = create ? open(parts[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600) : open(parts[2], O_RDONLY | O_CLOEXEC)
            let result = fd >= 0 ? "OK" : "errno \(errno)"
            if fd >= 0 { close(fd) }
            Sandbox.writeToStandardError(
                "swiftvmm: landlock probe: the \(kind.rawValue) thread '\(name)': \(parts[1]) \(parts[2]): \(result)\n")
        }
    }
#endif
