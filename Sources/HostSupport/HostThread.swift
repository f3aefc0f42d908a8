import CHostSupport
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Starts the VMM's own threads: vCPUs, timers, console readers, event loops.
///
/// Each is a plain pthread, not a task or a Dispatch queue: vCPU threads block
/// in `KVM_RUN` for as long as the guest runs, and a shared pool they can
/// take over would starve whatever else waits for it.
public enum HostThread {
    /// The longest thread name Linux keeps, in bytes (16 with the NUL).
    public static let nameLimit = 15

    /// What every thread `spawn` starts runs first, with its name, before its
    /// body (the sandbox installs the thread's seccomp filter there); `nil`
    /// for nothing. Set it before the threads it concerns are started.
    public static var startHook: (@Sendable (String) -> Void)? {
        get { hook.withLock { $0 } }
        set { hook.withLock { $0 = newValue } }
    }
    private static let hook = Mutex<(@Sendable (String) -> Void)?>(nil)

    /// Starts a thread that runs `body`, and returns the handle to join it by.
    ///
    /// The thread is named `name` (cut to `nameLimit` bytes at a character
    /// boundary) before `body` runs, so it shows in `/proc/self/task/*/comm`,
    /// `top -H` and debuggers. It inherits the caller's signal mask.
    ///
    /// The new thread neither allocates nor frees anything before or after
    /// `body`: the closure is released by whoever joins. A thread whose first
    /// `malloc` or `free` is glibc's makes glibc give it an arena of its own
    /// (a 64 MiB mapping), which a short-lived timer thread should not cost.
    ///
    /// - Parameters:
    ///   - stackSize: bytes of stack, at least `PTHREAD_STACK_MIN`; `nil` for
    ///     the default (8 MiB, which glibc caches after the thread ends).
    ///   - body: what the thread runs; the thread ends when it returns.
    ///
    /// The corresponding C function is `pthread_create`.
    public static func spawn(
        name: String, stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void
    ) throws(HostThreadError) -> JoinHandle {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        if let stackSize {
            guard stackSize > 0, pthread_attr_setstacksize(&attributes, stackSize) == 0 else {
                throw .invalidStackSize(stackSize)
            }
        }
        let start = JoinHandle.Start(name: cName(name), body: body)
        var thread = pthread_t()
        let result = withExtendedLifetime(start) {
            pthread_create(
                &thread, &attributes,
                { context in
                    guard let context else { return nil }
                    // Unretained: the handle owns `start` and releases it on
                    // the joining thread.
                    Unmanaged<JoinHandle.Start>.fromOpaque(context).takeUnretainedValue().run()
                    return nil
                }, Unmanaged.passUnretained(start).toOpaque())
        }
        guard result == 0 else { throw .cannotCreate(error: result) }
        return JoinHandle(thread: thread, start: start)
    }

    /// `name` as a NUL-terminated C string of at most `nameLimit` bytes,
    /// cut before the first character that does not fit.
    static func cName(_ name: String) -> [CChar] {
        var bytes = [CChar]()
        for character in name {
            let utf8 = character.utf8.filter { $0 != 0 }
            guard bytes.count + utf8.count <= nameLimit else { break }
            bytes.append(contentsOf: utf8.map { CChar(bitPattern: $0) })
        }
        bytes.append(0)
        return bytes
    }
}
