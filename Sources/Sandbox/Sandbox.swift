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
        HostThread.startHook = { name in
            if let kind = ThreadKind(threadName: name) { Sandbox.enterThread(kind, name: name) }
        }
        return ContinuousClock.now - start
    }

    /// Installs the process filter on the calling (main) thread, once the
    /// threads that need more than it allows have been started; every thread
    /// started later inherits it under its own.
    public static func confineMainThread() throws(SandboxError) {
        guard mode != .off else { return }
        try enter(.process, name: "main")
    }

    /// Installs `kind`'s filter on the calling thread, if the sandbox is on.
    /// A failure to install ends the process: a thread must not run unconfined
    /// when the user asked for filters.
    public static func enterThread(_ kind: ThreadKind, name: String) {
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
