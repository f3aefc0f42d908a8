internal import CSandbox
import HostSupport
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// seccomp-bpf filters per thread kind, for the command-line VMM.
///
/// `enable(mode:)` first: it installs the SIGSYS handler, sets
/// `PR_SET_NO_NEW_PRIVS`, compiles every kind's filter, and makes every
/// thread `HostThread.spawn` starts install its own kind's filter before its
/// body runs. Then, once the machine's files, sockets and threads are open,
/// `confineMainThread()` installs the process filter (the union of all
/// kinds) on the main thread, which every later thread inherits under its
/// own. Threads started by others (SwiftNIO's event loop: `enterThread(.api)`
/// there; Dispatch's workers) keep the process filter they inherit.
///
/// Library users (tests, `VMMTesting`) get no filter unless they call this:
/// a filter cannot be removed, and XCTest's own calls are not in it.
public enum Sandbox {
    private struct State: Sendable {
        var mode: SeccompMode = .off
        var programs: [ThreadKind: FilterProgram] = [:]
        /// Whether every thread gives up its capabilities when it starts (`dropCapabilitiesOnEveryThread`).
        var dropsCapabilities = false
        /// Whether the main thread will switch user (`--user`): threads keep what that takes.
        var userSwitchFollows = false
        /// Each kind's Landlock ruleset (`enableLandlock`); a kind without one keeps the domain it inherited.
        var landlockRulesets: [ThreadKind: LandlockRuleset] = [:]
    }
    private static let state = Mutex(State())

    /// The mode `enable` was called with (`off` until then).
    public static var mode: SeccompMode { state.withLock { $0.mode } }

    /// Whether a sanitizer runtime (ASan, TSan) is in the process: their own
    /// calls (LeakSanitizer's `ptrace` at exit, TSan's background thread) are
    /// no VMM thread's, so sanitized builds run without filters.
    public static var isSanitized: Bool {
        let everywhere = UnsafeMutableRawPointer(bitPattern: 0)  // RTLD_DEFAULT
        return dlsym(everywhere, "__asan_init") != nil || dlsym(everywhere, "__tsan_init") != nil
    }

    /// Turns the filters on (see the type's comment). Returns how long
    /// compiling and installing took on this thread. `off` does nothing; so
    /// does a sanitized build (`isSanitized`).
    @discardableResult
    public static func enable(mode: SeccompMode) throws(SandboxError) -> Duration {
        let start = ContinuousClock.now
        guard mode != .off, !isSanitized else { return .zero }
        // glibc reads /etc/localtime at the first localtime_r (swift-log's timestamps, on
        // whichever thread logs first): read it now, while every thread may still open files.
        tzset()
        var programs = [ThreadKind: FilterProgram]()
        for kind in ThreadKind.allCases {
            programs[kind] = try FilterProgram(kind: kind, rules: SandboxPolicy.rules(for: kind), mode: mode)
        }
        state.withLock {
            $0.mode = mode
            $0.programs = programs
        }
        let handler = csandbox_install_handler(mode == .enforce ? CSANDBOX_ENFORCE : CSANDBOX_LOG)
        guard handler == 0 else { throw .systemCall("sigaction(SIGSYS)", errno: -handler) }
        let noNewPrivileges = csandbox_set_no_new_privs()
        guard noNewPrivileges == 0 else { throw .systemCall("prctl(PR_SET_NO_NEW_PRIVS)", errno: -noNewPrivileges) }
        installStartHook()
        return ContinuousClock.now - start
    }

    /// Capabilities belong to a thread, not to the process: `capset` and
    /// `PR_CAPBSET_DROP` change the calling thread only, so the threads
    /// started before the main thread drops its own (the virtio I/O loop,
    /// the console, the GDB stub) would keep every one. From this call on,
    /// every thread `HostThread.spawn` starts, and the API's event loop
    /// (`enterThread(.api)`), gives up all of its own before its body runs
    /// (before its filter, too: the filter need not allow it).
    ///
    /// With `everyThread` false (`serve` without `--user`, whose API threads
    /// open taps after start-up), the vCPU, I/O, timer and GDB threads still
    /// drop theirs: they never need one.
    ///
    /// `userSwitchFollows` (`--user`): the main thread's `setresuid` is made
    /// by every thread (glibc signals each to make it itself, and aborts the
    /// process if one fails), which needs `CAP_SETUID` in each and clears the
    /// permitted and effective sets; so threads then empty only their
    /// bounding and ambient sets as they start, and leave the rest to it.
    public static func dropCapabilitiesOnEveryThread(_ everyThread: Bool = true, userSwitchFollows: Bool) {
        state.withLock {
            $0.dropsCapabilities = everyThread
            $0.userSwitchFollows = userSwitchFollows
        }
        installStartHook()
    }

    /// The highest Landlock ABI the kernel supports, or -errno where it has
    /// none (`ENOSYS`: not built in; `EOPNOTSUPP`: not enabled at boot).
    public static var landlockABI: Int32 { csandbox_landlock_abi() }

    /// Confines file-system access with Landlock (`policy`): builds the
    /// rulesets now, while every path can still be opened, and makes every
    /// thread `HostThread.spawn` starts, and the API's event loop
    /// (`enterThread(.api)`), restrict itself to its kind's before its body
    /// and its seccomp filter (like capabilities, `landlock_restrict_self`
    /// confines the calling thread only, and the threads it starts later);
    /// the main thread follows in `confineMainThread()`. Sets
    /// `PR_SET_NO_NEW_PRIVS`, which Landlock needs.
    ///
    /// Best-effort, as the Landlock documentation recommends: a kernel
    /// without it returns `unsupported` (the caller reports it once) and the
    /// VMM runs on. `off` and sanitized builds (LeakSanitizer reads `/proc`
    /// at exit) do nothing. Library users get none unless they call this.
    @discardableResult
    public static func enableLandlock(mode: LandlockMode, policy: LandlockPolicy) throws(SandboxError) -> LandlockStatus {
        guard mode != .off, !isSanitized else { return .off }
        let abi = Int(landlockABI)
        guard abi >= 1 else { return .unsupported(errno: Int32(-abi)) }
        let nothing = try LandlockRuleset(rules: [], abi: abi)
        var reachable: LandlockRuleset?
        if let rules = policy.reachable, !rules.isEmpty { reachable = try LandlockRuleset(rules: rules, abi: abi) }
        var rulesets = [ThreadKind: LandlockRuleset]()
        for kind in ThreadKind.allCases {
            guard let rules = policy.rules(for: kind) else { continue }
            rulesets[kind] = rules.isEmpty ? nothing : reachable
        }
        try LandlockRuleset.forbidNewPrivileges()
        state.withLock { $0.landlockRulesets = rulesets }
        installStartHook()
        return .enforced(abi: abi)
    }

    /// Restricts the calling thread to `kind`'s Landlock ruleset, if it has one.
    private static func restrictPaths(_ kind: ThreadKind, name: String) throws(SandboxError) {
        if let ruleset = state.withLock({ $0.landlockRulesets[kind] }) { try ruleset.restrictCallingThread() }
        #if DEBUG
            LandlockProbe.runIfAsked(by: kind, name: name)
        #endif
    }

    private static func installStartHook() {
        HostThread.startHook = { name in
            let kind = ThreadKind(threadName: name)
            Sandbox.dropCapabilitiesIfAsked(kind: kind, name: name)
            if let kind { Sandbox.enterThread(kind, name: name, capabilitiesDropped: true) }
        }
    }

    /// Gives up the calling thread's capabilities if every thread does, or if
    /// `kind` never needs one. A failure ends the process, as a filter's does.
    private static func dropCapabilitiesIfAsked(kind: ThreadKind?, name: String) {
        let (everyThread, userSwitchFollows) = state.withLock { ($0.dropsCapabilities, $0.userSwitchFollows) }
        guard everyThread || kind?.neverNeedsCapabilities == true else { return }
        let result = csandbox_drop_thread_capabilities(userSwitchFollows ? 1 : 0)
        guard result == 0 else {
            writeToStandardError("swiftvmm: sandbox: thread '\(name)' cannot drop its capabilities (errno \(-result))\n")
            abort()
        }
    }

    /// Closes every descriptor the process inherited but standard input,
    /// output and error (`close_range(3, ~0)`): whatever a launcher left open
    /// (a log, a socket, another VM's image) is out of a compromised VMM's
    /// reach. No command takes a descriptor by number, so none is kept; call
    /// it first thing, before the process opens anything of its own.
    ///
    /// `keepingParentSocket`: a Unix socket whose peer is the parent process
    /// stays open. A launcher written with Foundation's `Process`
    /// (swift-corelibs-foundation) learns that its child ended from such a
    /// socket, one end of a socketpair it made: closed early, its monitor
    /// waits in `waitpid` for this process and sees no other child end until
    /// the VMM does. The socket reaches only the process that started the VMM.
    /// Returns how many descriptors were kept.
    @discardableResult
    public static func closeInheritedDescriptors(keepingParentSocket: Bool = false) throws(SandboxError) -> Int {
        if keepingParentSocket {
            let result = csandbox_close_inherited_keeping_parent_socket()
            guard result >= 0 else { throw .systemCall("close(inherited descriptors)", errno: -result) }
            return Int(result)
        }
        let result = csandbox_close_from(3)
        guard result == 0 else { throw .systemCall("close_range(3, ~0)", errno: -result) }
        return 0
    }

    /// Checks that no thread of the process holds a capability: reads
    /// `/proc/self/task/*/status` (`CapInh`, `CapPrm`, `CapEff`, `CapBnd`,
    /// `CapAmb`). A thread just started may still be giving its up (its start
    /// hook runs while the thread that spawned it goes on), so the check is
    /// repeated for up to `patience`; then it throws `capabilitiesRemain`
    /// naming the first thread that holds any.
    ///
    /// `boundingOnly`: the other threads' bounding and ambient sets only, what
    /// they empty as they start; `--user` waits for that before switching user,
    /// which takes the `CAP_SETPCAP` they need for it.
    public static func checkNoThreadHoldsCapabilities(boundingOnly: Bool = false, patience: Duration = .seconds(2)) throws(SandboxError) {
        let deadline = ContinuousClock.now + patience
        let caller = "\(csandbox_thread_id()) "
        let checked = boundingOnly ? ["CapBnd", "CapAmb"] : ThreadCapabilities.fields
        while true {
            var holder: String?
            for (thread, fields) in ThreadCapabilities.everyThread() where !(boundingOnly && thread.hasPrefix(caller)) {
                if let held = fields.first(where: { checked.contains($0.key) && $0.value != 0 }) {
                    holder = "thread \(thread) \(held.key) \(String(held.value, radix: 16))"
                    break
                }
            }
            guard let holder else { return }
            guard ContinuousClock.now < deadline else { throw .capabilitiesRemain(holder) }
            usleep(1000)
        }
    }

    /// Installs the process filter on the calling (main) thread, once the
    /// threads that need more than it allows have been started; every thread
    /// started later inherits it under its own.
    /// Restricts it to its Landlock ruleset first, if `enableLandlock` made one.
    public static func confineMainThread() throws(SandboxError) {
        try restrictPaths(.process, name: "main")
        guard mode != .off else { return }
        try enter(.process, name: "main")
    }

    /// Installs `kind`'s filter on the calling thread, if the sandbox is on.
    /// A failure to install ends the process: a thread must not run unconfined
    /// when the user asked for filters.
    public static func enterThread(_ kind: ThreadKind, name: String) {
        enterThread(kind, name: name, capabilitiesDropped: false)
    }

    private static func enterThread(_ kind: ThreadKind, name: String, capabilitiesDropped: Bool) {
        if !capabilitiesDropped { dropCapabilitiesIfAsked(kind: kind, name: name) }
        // A failure ends the process, as a filter's does.
        do { try restrictPaths(kind, name: name) } catch {
            writeToStandardError("swiftvmm: sandbox: thread '\(name)' cannot confine its paths: \(error)\n")
            abort()
        }
        guard mode != .off else { return }
        do { try enter(kind, name: name) } catch {
            writeToStandardError("swiftvmm: \(error)\n")
            abort()
        }
    }

    private static func enter(_ kind: ThreadKind, name: String) throws(SandboxError) {
        guard let program = state.withLock({ $0.programs[kind] }) else { return }
        try program.install()
        csandbox_set_thread_kind(kind.staticName, name)
        #if DEBUG
            TestViolation.makeIfAsked(by: kind)
        #endif
    }

    static func writeToStandardError(_ text: String) {
        var text = text
        text.withUTF8 { buffer in _ = write(STDERR_FILENO, buffer.baseAddress, buffer.count) }
    }
}

extension ThreadKind {
    /// The kind's name as a C string that lives forever, for the SIGSYS handler.
    var staticName: UnsafePointer<CChar> {
        let pointer: StaticString
        switch self {
        case .process: pointer = "main"
        case .vcpu: pointer = "vcpu"
        case .io: pointer = "io"
        case .timer: pointer = "timer"
        case .gdb: pointer = "gdb"
        case .console: pointer = "console"
        case .api: pointer = "api"
        case .migration: pointer = "migration"
        }
        return UnsafeRawPointer(pointer.utf8Start).assumingMemoryBound(to: CChar.self)
    }
}
