#if DEBUG
    internal import CSandbox

    #if canImport(Glibc)
        import Glibc
    #endif

    /// The test hook (debug builds only): `SWIFTVMM_SECCOMP_TEST_VIOLATION=KIND`
    /// makes the first thread of that kind call `ptrace` right after its filter
    /// is installed, which no filter allows. `SandboxCLITests` expects `SIGSYS`
    /// and the message under `--seccomp enforce`, and the run to go on under `log`.
    enum TestViolation {
        static func makeIfAsked(by kind: ThreadKind) {
            guard let asked = getenv("SWIFTVMM_SECCOMP_TEST_VIOLATION"), String(cString: asked) == kind.rawValue else { return }
            // PTRACE_GETREGS of no process: ESRCH when it is allowed, no effect either way.
            _ = csandbox_syscall(SystemCalls.number(of: "ptrace") ?? 101, 12, -1, 0, 0)
        }
    }
#endif

#if DEBUG
    #if canImport(Glibc)
        import Glibc
    #endif

    extension Sandbox {
        /// The test hook (debug builds only) for `--user` and `--chroot`:
        /// `SWIFTVMM_SANDBOX_TEST_PROBE=PATH` makes the confined main thread
        /// try to open PATH and report the result and its effective
        /// capabilities on stderr, as `sandbox probe: open PATH: OK|errno N; CapEff N`.
        public static func runTestProbe() {
            guard let path = getenv("SWIFTVMM_SANDBOX_TEST_PROBE") else { return }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            let opened = fd >= 0 ? "OK" : "errno \(errno)"
            if fd >= 0 { close(fd) }
            let capabilities = csandbox_effective_capabilities()
            writeToStandardError(
                "swiftvmm: sandbox probe: open \(String(cString: path)): \(opened); CapEff \(capabilities); uid \(getuid())\n")
        }
    }
#endif
