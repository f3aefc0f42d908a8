import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Why a terminal could not be put into raw mode.
public enum TerminalError: Error, Equatable, CustomStringConvertible {
    /// The descriptor is a pipe, a file or a socket, not a terminal.
    case notATerminal(fileDescriptor: Int32)
    /// `tcgetattr` failed.
    case cannotGetAttributes(fileDescriptor: Int32, errno: Int32)
    /// `tcsetattr` failed.
    case cannotSetAttributes(fileDescriptor: Int32, errno: Int32)
    /// Another `Terminal` holds raw mode: the process-wide restore state has
    /// room for one terminal, as QEMU allows one stdio console.
    case alreadyRaw(fileDescriptor: Int32)

    public var description: String {
        switch self {
        case .notATerminal(let fd): return "file descriptor \(fd) is not a terminal"
        case .cannotGetAttributes(let fd, let errno): return "cannot read the terminal settings of file descriptor \(fd) (errno \(errno))"
        case .cannotSetAttributes(let fd, let errno): return "cannot change the terminal settings of file descriptor \(fd) (errno \(errno))"
        case .alreadyRaw(let fd): return "cannot make file descriptor \(fd) raw: another terminal is in raw mode"
        }
    }
}

/// A terminal in raw mode, so that every key reaches the guest's serial
/// console as typed, until `restore()` or the end of this value, whichever
/// comes first.
///
/// Raw mode is what QEMU sets for its stdio console with `-nographic`
/// (`qemu_chr_set_echo_stdio`, with `signal=off` as `mon:stdio` implies): no
/// echo, no line editing, no `^C`/`^Z`/`^\` signals (those bytes go to the
/// guest; Ctrl-A x quits, see `ConsoleEscape`), no input translation or flow
/// control, 8-bit characters, and `read` returning each byte at once. Output
/// processing (`OPOST`) stays on with the terminal's own `ONLCR`, as in QEMU,
/// so that a guest printing a bare LF still starts a new line on the host.
///
/// The saved settings come back on every way out: `restore()`, the end of
/// the value, a normal process exit (`atexit`, which runs when
/// ArgumentParser calls `exit`), and the signals that end a process —
/// SIGHUP, SIGINT, SIGQUIT, SIGTERM, and the crash signals SIGILL, SIGTRAP,
/// SIGABRT, SIGBUS, SIGFPE and SIGSEGV, so a crashing VMM does not leave the
/// user typing `reset` blind. Each handler restores the terminal, then hands
/// the signal to the disposition it replaced: the default action (re-raised,
/// so the process ends as it would have) or a handler installed before (the
/// Swift runtime's backtracer, say). A signal ignored before (SIGHUP under
/// `nohup`) stays ignored. SIGCONT puts the terminal back into raw mode after
/// a stop, as QEMU does: the shell may have reset it while the job was stopped.
///
/// One terminal at a time can be raw, because the handlers need the saved
/// settings in storage allocated before any signal can arrive.
public struct Terminal: ~Copyable {
    /// The terminal's file descriptor (not owned: it stays open).
    public let fileDescriptor: Int32
    private let session: Int

    /// Whether `fd` refers to a terminal. The corresponding C function is `isatty`.
    public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    /// Saves the settings of the terminal `fd` and puts it into raw mode.
    ///
    /// Typed-ahead input is kept (`TCSANOW`, not `TCSAFLUSH`): it was meant
    /// for the guest.
    public static func makeRaw(_ fd: Int32 = STDIN_FILENO) throws(TerminalError) -> Terminal {
        guard isTerminal(fd) else { throw .notATerminal(fileDescriptor: fd) }
        var original = termios()
        guard tcgetattr(fd, &original) == 0 else { throw .cannotGetAttributes(fileDescriptor: fd, errno: errno) }
        guard RawModeState.claim() else { throw .alreadyRaw(fileDescriptor: fd) }
        let session = RawModeState.publish(fd: fd, saved: original, raw: rawAttributes(from: original))
        if let error = RawModeState.apply(RawModeState.raw, to: fd) {
            RawModeState.release(session: session)
            throw .cannotSetAttributes(fileDescriptor: fd, errno: error)
        }
        return Terminal(fileDescriptor: fd, session: session)
    }

    private init(fileDescriptor: Int32, session: Int) {
        self.fileDescriptor = fileDescriptor
        self.session = session
    }

    /// Puts back the settings saved by `makeRaw`. Calling it again, or after
    /// another terminal has been made raw, does nothing.
    public func restore() {
        guard RawModeState.isCurrent(session) else { return }
        _ = RawModeState.apply(RawModeState.saved, to: fileDescriptor)
        RawModeState.release(session: session)
    }

    deinit { restore() }

    /// `original` changed as QEMU's stdio console changes it (with `signal=off`).
    static func rawAttributes(from original: termios) -> termios {
        var raw = original
        // No break, parity-mark, strip, CR/LF translation or XON/XOFF: every
        // byte, ^S and ^Q included, is the guest's.
        raw.c_iflag &= ~tcflag_t(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON)
        // Keep output processing, and with it the terminal's ONLCR.
        raw.c_oflag |= tcflag_t(OPOST)
        // No echo (the guest echoes), no line editing, no ^V, and no signals
        // from ^C, ^Z or ^\, which the guest's shell wants.
        raw.c_lflag &= ~tcflag_t(ECHO | ECHONL | ICANON | IEXTEN | ISIG)
        raw.c_cflag &= ~tcflag_t(CSIZE | PARENB)
        raw.c_cflag |= tcflag_t(CS8)
        // read() returns as soon as one byte is there, with no timer.
        withUnsafeMutableBytes(of: &raw.c_cc) { controlCharacters in
            controlCharacters[Int(VMIN)] = 1
            controlCharacters[Int(VTIME)] = 0
        }
        return raw
    }

    /// What a signal handler does: puts the saved settings back, if a
    /// terminal is raw. Only async-signal-safe calls; internal for tests.
    static func restoreFromSignalHandler() { RawModeState.restoreSaved() }
}

/// The process-wide raw-mode state the signal and exit handlers read.
///
/// Everything is allocated and initialised before the first handler is
/// installed, so a handler touches no lazy global for the first time, never
/// allocates, and calls only `tcsetattr`, `sigaction` and `raise`
/// (async-signal-safe) plus lock-free atomics.
private enum RawModeState {
    /// Set while a `Terminal` is between `claim()` and `release(session:)`.
    static let busy = Atomic<Bool>(false)
    /// The id of the raw session, published after `saved` and `raw` are
    /// written (release) and read before them (acquire); 0 when none.
    static let session = Atomic<Int>(0)
    static let nextSession = Atomic<Int>(0)
    static let descriptor = Atomic<Int32>(-1)
    // Written only by the claimer between claim() and publishing `session`,
    // read by handlers only after seeing `session` set: the atomics order
    // every access, which is what nonisolated(unsafe) leaves to us.
    nonisolated(unsafe) static let saved = UnsafeMutablePointer<termios>.allocate(capacity: 1)
    nonisolated(unsafe) static let raw = UnsafeMutablePointer<termios>.allocate(capacity: 1)
    /// The dispositions our handlers replaced, indexed by signal number;
    /// written once, before each handler is installed.
    nonisolated(unsafe) static let previousActions = UnsafeMutablePointer<sigaction>.allocate(capacity: signalLimit)
    static let signalLimit = 65

    /// The signals after which the process ends; their handlers restore.
    static let fatalSignals: [Int32] = [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV]

    private static let installation: Void = {
        // Touch every global a handler reads, so none is initialised (with
        // swift_once, which may lock) inside a handler.
        _ = session.load(ordering: .relaxed)
        _ = descriptor.load(ordering: .relaxed)
        _ = saved
        _ = raw
        _ = previousActions
        for signal in fatalSignals + [SIGCONT] { install(signal) }
        atexit { RawModeState.restoreSaved() }
    }()

    static func claim() -> Bool {
        busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
    }

    /// Stores the settings and makes them visible to the handlers; returns
    /// the new session's id. The handlers are installed first, so a signal
    /// from here on restores.
    static func publish(fd: Int32, saved original: termios, raw rawAttributes: termios) -> Int {
        _ = installation
        saved.pointee = original
        raw.pointee = rawAttributes
        descriptor.store(fd, ordering: .relaxed)
        let id = nextSession.wrappingAdd(1, ordering: .relaxed).newValue
        session.store(id, ordering: .releasing)
        return id
    }

    static func isCurrent(_ id: Int) -> Bool { session.load(ordering: .acquiring) == id }

    static func release(session id: Int) {
        guard session.compareExchange(expected: id, desired: 0, ordering: .acquiringAndReleasing).exchanged else { return }
        busy.store(false, ordering: .releasing)
    }

    /// Sets `attributes` on `fd`; returns the errno on failure.
    static func apply(_ attributes: UnsafeMutablePointer<termios>, to fd: Int32) -> Int32? {
        while tcsetattr(fd, TCSANOW, attributes) != 0 {
            if errno != EINTR { return errno }
        }
        return nil
    }

    /// Async-signal-safe. Leaves the session set: restoring twice is
    /// harmless, while clearing it here could race with `restore()`.
    static func restoreSaved() {
        guard session.load(ordering: .acquiring) != 0 else { return }
        _ = apply(saved, to: descriptor.load(ordering: .relaxed))
    }

    /// Async-signal-safe.
    static func reapplyRaw() {
        guard session.load(ordering: .acquiring) != 0 else { return }
        _ = apply(raw, to: descriptor.load(ordering: .relaxed))
    }

    private static func install(_ signal: Int32) {
        guard signal < signalLimit else { return }
        var previous = sigaction()
        guard sigaction(signal, nil, &previous) == 0 else { return }
        // An ignored signal stays ignored: nohup means it.
        guard handlerAddress(previous) != ignoreAddress else { return }
        previousActions[Int(signal)] = previous
        var action = sigaction()
        action.__sigaction_handler.sa_sigaction = rawModeSignalHandler
        sigemptyset(&action.sa_mask)
        // SA_ONSTACK: a stack overflow's SIGSEGV can still be handled on the
        // alternate stack the Swift runtime sets up. SA_NODEFER, as the
        // runtime's own crash handler has: that handler starts a thread that
        // reads memory which may fault, and a thread created with SIGSEGV
        // blocked is killed by such a fault, cutting the backtrace short.
        // SA_RESTART for SIGCONT, so a resumed vCPU or reader call goes on.
        action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | (signal == SIGCONT ? SA_RESTART : 0)
        sigaction(signal, &action, nil)
    }

    static let defaultAddress = 0
    static let ignoreAddress = 1

    /// SIG_DFL is 0 and SIG_IGN is 1 in the handler union.
    static func handlerAddress(_ action: sigaction) -> Int {
        withUnsafeBytes(of: action.__sigaction_handler) { $0.load(as: Int.self) }
    }
}

/// The handler for every signal `RawModeState` installs.
private func rawModeSignalHandler(_ signal: Int32, _ info: UnsafeMutablePointer<siginfo_t>?, _ context: UnsafeMutableRawPointer?) {
    let savedErrno = errno
    defer { errno = savedErrno }
    if signal == SIGCONT {
        RawModeState.reapplyRaw()
    } else {
        RawModeState.restoreSaved()
    }
    let previous = RawModeState.previousActions[Int(signal)]
    switch RawModeState.handlerAddress(previous) {
    case RawModeState.defaultAddress:
        // Continuing is SIGCONT's default action, and has happened already.
        guard signal != SIGCONT else { return }
        // With the default action back, the re-raised signal ends the
        // process as the original would have.
        var defaultAction = sigaction()
        sigemptyset(&defaultAction.sa_mask)
        sigaction(signal, &defaultAction, nil)
        raise(signal)
    case RawModeState.ignoreAddress:
        return
    default:
        if previous.sa_flags & SA_SIGINFO != 0 {
            previous.__sigaction_handler.sa_sigaction?(signal, info, context)
        } else {
            previous.__sigaction_handler.sa_handler?(signal)
        }
    }
}
