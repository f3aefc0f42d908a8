import Devices
import HostSupport
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Why console input could not start.
public enum ConsoleInputError: Error, Equatable, CustomStringConvertible {
    /// The wake-up pipe could not be created.
    case cannotCreatePipe(errno: Int32)
    /// The reader thread could not be started (`pthread_create`'s error).
    case cannotStartThread(error: Int32)

    public var description: String {
        switch self {
        case .cannotCreatePipe(let errno): return "cannot create the console's wake-up pipe (errno \(errno))"
        case .cannotStartThread(let error): return "cannot start the console input thread (error \(error))"
        }
    }
}

/// The host side of the guest's serial console input: a thread that reads a
/// file descriptor (stdin) and queues the bytes for the vCPU thread, which
/// takes them with `takeInput(max:)` when the UART has room.
///
/// The reader is a thread of its own, not a Dispatch queue: vCPU threads may
/// take every thread of the shared pool, and input must never wait for one.
///
/// In `.terminal` mode the bytes go through `ConsoleEscape` first, so Ctrl-A x
/// calls `onQuit`, Ctrl-A h `onHelp`, Ctrl-A p `onPause` and Ctrl-A s
/// `onSnapshot`. In `.passthrough` mode (stdin is a pipe or a file) every byte
/// goes to the guest unchanged, and the end of input only calls
/// `onEndOfInput`: the guest keeps running.
///
/// The queue is bounded (64 KiB by default). When it is full the reader stops
/// reading until the vCPU takes some, so a large paste or pipe is delayed,
/// never dropped; the kernel's pipe or tty buffer holds the rest.
///
/// The callbacks run on the reader thread. They must not block for long, and
/// must not wait for the reader thread (`stop()` from a callback is fine).
public final class ConsoleInput: Sendable {
    /// How the bytes read are interpreted.
    public enum Mode: Sendable, Equatable {
        /// A person types at a terminal: `ConsoleEscape` commands are recognised.
        case terminal
        /// Bytes from a pipe or file, passed on unchanged.
        case passthrough
    }

    /// The default queue capacity: a generous paste, far more than the
    /// UART's 64-byte FIFO takes at once.
    public static let defaultCapacity = 64 * 1024

    /// The largest single `read`.
    static let chunkSize = 4096

    private let shared: Shared
    private let thread: JoinHandle

    /// Starts reading `fileDescriptor` (not owned: it stays open).
    ///
    /// - Parameters:
    ///   - onInput: called after new bytes are queued; the VMM kicks the vCPU
    ///     so it moves them into the UART.
    ///   - onQuit: Ctrl-A x (terminal mode). Reading stops after it.
    ///   - onHelp: Ctrl-A h (terminal mode); print `ConsoleEscape.helpText`.
    ///   - onPause: Ctrl-A p (terminal mode): pause the guest, or resume it
    ///     if paused. Reading goes on, so the next Ctrl-A p arrives.
    ///   - onSnapshot: Ctrl-A s (terminal mode): save a snapshot; the guest
    ///     goes on running afterwards.
    ///   - onEndOfInput: the input ended (end of file, or a read error such as
    ///     `EIO` from a hung-up terminal). Bytes read before stay queued.
    public init(
        fileDescriptor: Int32 = STDIN_FILENO, mode: Mode, capacity: Int = ConsoleInput.defaultCapacity,
        onInput: @escaping @Sendable () -> Void = {}, onQuit: @escaping @Sendable () -> Void = {},
        onHelp: @escaping @Sendable () -> Void = {}, onPause: @escaping @Sendable () -> Void = {},
        onSnapshot: @escaping @Sendable () -> Void = {}, onEndOfInput: @escaping @Sendable () -> Void = {}
    ) throws(ConsoleInputError) {
        var wakeDescriptors: [Int32] = [-1, -1]
        guard pipe(&wakeDescriptors) == 0 else { throw .cannotCreatePipe(errno: errno) }
        // Glibc's module hides pipe2(); set the flags one by one. Non-blocking:
        // a stop must never wait on a full pipe.
        for fd in wakeDescriptors {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, O_NONBLOCK)
        }
        shared = Shared(
            input: fileDescriptor, mode: mode, capacity: max(1, capacity), wakeRead: wakeDescriptors[0],
            wakeWrite: wakeDescriptors[1],
            callbacks: Callbacks(
                input: onInput, quit: onQuit, help: onHelp, pause: onPause, snapshot: onSnapshot,
                endOfInput: onEndOfInput))
        do {
            thread = try HostThread.spawn(name: "console-input") { [shared] in shared.readLoop() }
        } catch {
            switch error {
            case .cannotCreate(let error): throw .cannotStartThread(error: error)
            case .invalidStackSize: throw .cannotStartThread(error: EINVAL)
            }
        }
    }

    deinit { stop() }

    /// Takes up to `max` queued bytes, oldest first, without waiting; empty
    /// when none are queued. Safe from any thread (the vCPU's).
    public func takeInput(max: Int) -> [UInt8] { shared.take(max: max) }

    /// Whether bytes are queued. Lock-free, so a vCPU loop may ask on every
    /// exit before it calls `takeInput`.
    public var hasPendingInput: Bool { shared.queuedCount.load(ordering: .acquiring) > 0 }

    /// Whether the input has ended (end of file, read error, Ctrl-A x, or
    /// `stop()`): no more bytes will be queued. Some may still be waiting.
    public var inputHasEnded: Bool { shared.ended.load(ordering: .acquiring) }

    /// Blocks until bytes are queued, the input ends, or `timeout` passes;
    /// returns whether bytes are queued. For a vCPU thread whose guest
    /// halted waiting for a key: signals do not cut the wait short (a
    /// deadline's kick included), so wait in slices that bound the delay.
    public func waitForInput(timeout: Duration) -> Bool { shared.waitForInput(timeout: timeout) }

    /// Stops reading and waits for the reader thread to finish. Bytes already
    /// queued stay available to `takeInput`. Returns promptly even while the
    /// reader waits in `poll`/`read` or for queue space. Safe to call more
    /// than once, from any thread, and from the callbacks (which then do not
    /// wait for the thread they run on).
    public func stop() {
        shared.requestStop()
        // On the reader thread (a callback, or the last reference dropped
        // there), this does not wait: the thread ends when the callback returns.
        thread.join()
    }
}

extension ConsoleInput: SerialInputSource {}

extension ConsoleInput {
    struct Callbacks: Sendable {
        let input: @Sendable () -> Void
        let quit: @Sendable () -> Void
        let help: @Sendable () -> Void
        let pause: @Sendable () -> Void
        let snapshot: @Sendable () -> Void
        let endOfInput: @Sendable () -> Void
    }

    /// What the reader thread and the VMM share. The queue is guarded by a
    /// pthread mutex with condition variables (the reader waits on one for
    /// space, a halted vCPU on the other for input), which
    /// `Synchronization.Mutex` does not offer; everything else is immutable
    /// or atomic. Hence `@unchecked Sendable`.
    final class Shared: @unchecked Sendable {
        let input: Int32
        let mode: Mode
        let callbacks: Callbacks
        private let wakeRead: Int32
        private let wakeWrite: Int32

        private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        /// Signalled when queue space frees up or a stop is requested.
        private let spaceAvailable = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        /// Signalled when bytes are queued or the input ends.
        private let inputAvailable = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        // A ring buffer, under `mutex`.
        private var buffer: [UInt8]
        private var head = 0
        private var count = 0
        private var stopping = false

        /// `count`, mirrored for lock-free peeking.
        let queuedCount = Atomic<Int>(0)
        /// Set under `mutex` (so a waiter cannot miss it), read without.
        let ended = Atomic<Bool>(false)

        init(input: Int32, mode: Mode, capacity: Int, wakeRead: Int32, wakeWrite: Int32, callbacks: Callbacks) {
            self.input = input
            self.mode = mode
            self.callbacks = callbacks
            self.wakeRead = wakeRead
            self.wakeWrite = wakeWrite
            buffer = [UInt8](repeating: 0, count: capacity)
            pthread_mutex_init(mutex, nil)
            pthread_cond_init(spaceAvailable, nil)
            var attributes = pthread_condattr_t()
            pthread_condattr_init(&attributes)
            pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
            pthread_cond_init(inputAvailable, &attributes)
            pthread_condattr_destroy(&attributes)
        }

        deinit {
            close(wakeRead)
            close(wakeWrite)
            pthread_cond_destroy(inputAvailable)
            pthread_cond_destroy(spaceAvailable)
            pthread_mutex_destroy(mutex)
            inputAvailable.deallocate()
            spaceAvailable.deallocate()
            mutex.deallocate()
        }

        func requestStop() {
            pthread_mutex_lock(mutex)
            stopping = true
            pthread_cond_broadcast(spaceAvailable)
            pthread_mutex_unlock(mutex)
            // Wakes a reader blocked in poll(). The pipe is non-blocking: if
            // it is full, a wake-up is pending anyway.
            var byte: UInt8 = 1
            _ = write(wakeWrite, &byte, 1)
        }

        private var isStopping: Bool {
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            return stopping
        }

        private func markEnded() {
            pthread_mutex_lock(mutex)
            ended.store(true, ordering: .releasing)
            pthread_cond_broadcast(inputAvailable)
            pthread_mutex_unlock(mutex)
        }

        func take(max: Int) -> [UInt8] {
            guard max > 0, queuedCount.load(ordering: .acquiring) > 0 else { return [] }
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            let taken = min(max, count)
            var bytes = [UInt8]()
            bytes.reserveCapacity(taken)
            for index in 0..<taken { bytes.append(buffer[(head + index) % buffer.count]) }
            head = (head + taken) % buffer.count
            count -= taken
            queuedCount.store(count, ordering: .releasing)
            if taken > 0 { pthread_cond_signal(spaceAvailable) }
            return bytes
        }

        func waitForInput(timeout: Duration) -> Bool {
            var deadline = MonotonicDeadline.after(timeout).timespecValue
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            while count == 0 && !ended.load(ordering: .relaxed) {
                if pthread_cond_timedwait(inputAvailable, mutex, &deadline) == ETIMEDOUT { break }
            }
            return count > 0
        }

        /// Queues all of `bytes`, waiting for space as needed, and calls
        /// `onInput` after each part queued (before waiting, so the vCPU is
        /// told to drain). Returns false if a stop came first.
        private func enqueue(_ bytes: [UInt8]) -> Bool {
            var next = 0
            while next < bytes.count {
                pthread_mutex_lock(mutex)
                while count == buffer.count && !stopping { pthread_cond_wait(spaceAvailable, mutex) }
                if stopping {
                    pthread_mutex_unlock(mutex)
                    return false
                }
                let part = min(bytes.count - next, buffer.count - count)
                for index in 0..<part { buffer[(head + count + index) % buffer.count] = bytes[next + index] }
                count += part
                queuedCount.store(count, ordering: .releasing)
                pthread_cond_broadcast(inputAvailable)
                pthread_mutex_unlock(mutex)
                next += part
                callbacks.input()
            }
            return true
        }

        /// The reader thread's body.
        func readLoop() {
            defer { markEnded() }
            var escape = ConsoleEscape()
            var chunk = [UInt8](repeating: 0, count: ConsoleInput.chunkSize)
            while !isStopping {
                switch waitForReadable() {
                case .stop: return
                case .retry: continue
                case .ready: break
                }
                let n = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                guard n > 0 else {
                    // End of file, or an error such as EIO from a terminal
                    // whose other side hung up: either way no more input.
                    // A Ctrl-A typed last was for the guest.
                    _ = enqueue(escape.finish())
                    markEnded()
                    callbacks.endOfInput()
                    return
                }
                guard mode == .terminal else {
                    guard enqueue(Array(chunk[0..<n])) else { return }
                    continue
                }
                let output = escape.process(chunk[0..<n])
                guard enqueue(output.bytes) else { return }
                for action in output.actions {
                    switch action {
                    case .help: callbacks.help()
                    case .pause: callbacks.pause()
                    case .snapshot: callbacks.snapshot()
                    case .quit:
                        markEnded()
                        callbacks.quit()
                        return
                    }
                }
            }
        }

        private enum Readiness { case ready, retry, stop }

        /// Waits until the input can be read (or has hung up) or a stop is
        /// requested; poll() rather than a bare read(), so `stop()` can wake
        /// the thread through the pipe.
        private func waitForReadable() -> Readiness {
            var descriptors = [
                pollfd(fd: input, events: Int16(POLLIN), revents: 0),
                pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
            ]
            let result = poll(&descriptors, nfds_t(descriptors.count), -1)
            // Only EINTR and ENOMEM are possible here; retry both.
            if result < 0 { return .retry }
            if descriptors[1].revents != 0 { return .stop }
            // POLLHUP, POLLERR and POLLNVAL too: the read() that follows
            // reports them, and ends the input.
            return descriptors[0].revents != 0 ? .ready : .retry
        }
    }
}
