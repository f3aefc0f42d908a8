import CHostSupport

#if canImport(Glibc)
    import Glibc
#endif

/// An epoll loop on a thread of its own: it waits until registered file
/// descriptors are ready, or scheduled times come, and runs their handlers,
/// one at a time, on its thread.
///
/// For the VMM's I/O that is not a vCPU's: virtio back ends (a tap device,
/// an image file's eventfds) and the control API socket. Descriptors are
/// level-triggered: a handler that leaves data unread is called again.
///
/// Handlers must not block; they may call every method here, `stop()`
/// included (which then does not wait for the loop thread, since they run
/// on it).
public final class EventLoop: Sendable {
    /// Readiness, as epoll reports it.
    public struct Events: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// Data can be read (`EPOLLIN`).
        public static let readable = Events(rawValue: EPOLLIN.rawValue)
        /// Data can be written (`EPOLLOUT`).
        public static let writable = Events(rawValue: EPOLLOUT.rawValue)
        /// The other end hung up (`EPOLLHUP`); reported whether asked for or not.
        public static let hangUp = Events(rawValue: EPOLLHUP.rawValue)
        /// An error is pending (`EPOLLERR`); reported whether asked for or not.
        public static let error = Events(rawValue: EPOLLERR.rawValue)
    }

    /// What the loop does when a descriptor is ready: a handler's, or a
    /// scheduled action's timerfd (owned by the loop).
    private enum Registration {
        case handler(@Sendable (Events) -> Void)
        case timer(@Sendable () -> Void)
    }

    /// What the loop thread and the callers share; the table and the flag
    /// under `condition`'s lock, the descriptors immutable until `close()`.
    private final class Core: @unchecked Sendable {
        let condition = MonotonicCondition()
        let epoll: Int32
        let wakeup: Int32
        var registrations: [Int32: Registration] = [:]
        var stopping = false
        var closed = false
        /// Whether the loop thread may still use the descriptors; while it
        /// does, `close()` leaves the closing to it (`closeRequested`).
        var loopRunning = false
        var closeRequested = false

        init(epoll: Int32, wakeup: Int32) {
            self.epoll = epoll
            self.wakeup = wakeup
        }

        deinit { close() }

        /// Closes the loop's own descriptors (not the registered ones, which
        /// are the callers'), once the loop thread no longer uses them.
        func close() {
            let timers: [Int32]? = condition.withLock {
                guard !closed else { return nil }
                guard !loopRunning else {
                    closeRequested = true
                    return nil
                }
                closed = true
                let timers = registrations.compactMap { entry -> Int32? in
                    if case .timer = entry.value { return entry.key } else { return nil }
                }
                registrations.removeAll()
                return timers
            }
            guard let timers else { return }
            for fd in timers { _ = Glibc.close(fd) }
            _ = Glibc.close(epoll)
            _ = Glibc.close(wakeup)
        }

        /// Under the lock, so that it never writes to a closed (and perhaps
        /// reused) descriptor number.
        func wake() {
            condition.withLock {
                guard !closed else { return }
                var one: UInt64 = 1
                _ = write(wakeup, &one, 8)
            }
        }

        func add(_ fd: Int32, events: UInt32, registration: Registration) throws(EventLoopError) {
            try condition.withLock { () throws(EventLoopError) in
                guard !stopping else { throw .stopped }
                var event = epoll_event()
                event.events = events
                event.data.fd = fd
                guard epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) == 0 else {
                    throw .cannotRegister(fileDescriptor: fd, errno: errno)
                }
                registrations[fd] = registration
            }
        }

        /// The loop thread's body.
        func run() {
            defer {
                let mustClose = condition.withLock {
                    loopRunning = false
                    return closeRequested
                }
                if mustClose { close() }
            }
            var events = [epoll_event](repeating: epoll_event(), count: 32)
            while true {
                if condition.withLock({ stopping }) { return }
                let count = epoll_wait(epoll, &events, Int32(events.count), -1)
                guard count >= 0 else {
                    if errno == EINTR { continue }
                    return
                }
                for index in 0..<Int(count) {
                    let fd = events[index].data.fd
                    let ready = Events(rawValue: events[index].events)
                    if fd == wakeup {
                        var value: UInt64 = 0
                        _ = read(wakeup, &value, 8)
                        continue
                    }
                    dispatch(fd, ready)
                }
            }
        }

        private func dispatch(_ fd: Int32, _ ready: Events) {
            // Looked up again for every event: an earlier handler of the same
            // batch may have unregistered this descriptor.
            let registration: Registration? = condition.withLock {
                guard !stopping, let registration = registrations[fd] else { return nil }
                if case .timer = registration {
                    registrations[fd] = nil
                    _ = epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nil)
                    _ = Glibc.close(fd)
                }
                return registration
            }
            switch registration {
            case .handler(let handler): handler(ready)
            case .timer(let action): action()
            case nil: break
            }
        }
    }

    private let core: Core
    private let thread: JoinHandle

    /// Starts the loop thread, with nothing registered.
    public init(name: String = "event-loop", stackSize: Int? = nil) throws(EventLoopError) {
        let epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw .cannotCreate(what: "epoll instance", errno: errno) }
        let wakeup = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard wakeup >= 0 else {
            let error = errno
            _ = Glibc.close(epoll)
            throw .cannotCreate(what: "eventfd", errno: error)
        }
        let core = Core(epoll: epoll, wakeup: wakeup)
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = wakeup
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, wakeup, &event) == 0 else {
            throw .cannotRegister(fileDescriptor: wakeup, errno: errno)
        }
        self.core = core
        core.condition.withLock { core.loopRunning = true }
        do { thread = try HostThread.spawn(name: name, stackSize: stackSize) { core.run() } } catch {
            core.condition.withLock { core.loopRunning = false }
            throw .cannotStartThread(error)
        }
    }

    deinit { stop() }

    /// Whether the calling thread is the loop's: handlers run there.
    public var isCurrent: Bool { thread.isCurrent }

    /// Calls `handler` on the loop thread whenever `fd` is ready for one of
    /// `events` (or has hung up or failed). The descriptor stays the caller's:
    /// unregister it before closing it.
    ///
    /// The corresponding C function is `epoll_ctl` (`EPOLL_CTL_ADD`).
    public func register(
        fd: Int32, events: Events = .readable, handler: @escaping @Sendable (Events) -> Void
    ) throws(EventLoopError) {
        try core.add(fd, events: events.rawValue, registration: .handler(handler))
    }

    /// Stops watching `fd`. Its handler is not called after this returns,
    /// except for a call already running on the loop thread.
    public func unregister(fd: Int32) throws(EventLoopError) {
        try core.condition.withLock { () throws(EventLoopError) in
            guard case .handler = core.registrations[fd] else { throw .notRegistered(fileDescriptor: fd) }
            core.registrations[fd] = nil
            _ = epoll_ctl(core.epoll, EPOLL_CTL_DEL, fd, nil)
        }
    }

    /// Runs `action` once on the loop thread after `delay` (a timerfd on
    /// `CLOCK_MONOTONIC`, closed after it fires or when the loop stops).
    ///
    /// The corresponding C function is `timerfd_settime`.
    public func schedule(after delay: Duration, _ action: @escaping @Sendable () -> Void) throws(EventLoopError) {
        let timer = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_CLOEXEC | TFD_NONBLOCK))
        guard timer >= 0 else { throw .cannotCreate(what: "timerfd", errno: errno) }
        var setting = itimerspec()
        // Absolute, and at least a nanosecond ahead: zero would disarm it.
        setting.it_value = MonotonicDeadline.after(delay).advanced(by: .nanoseconds(1)).timespecValue
        guard timerfd_settime(timer, Int32(TFD_TIMER_ABSTIME), &setting, nil) == 0 else {
            let error = errno
            _ = Glibc.close(timer)
            throw .cannotCreate(what: "timerfd", errno: error)
        }
        do { try core.add(timer, events: EPOLLIN.rawValue, registration: .timer(action)) } catch {
            _ = Glibc.close(timer)
            throw error
        }
    }

    /// Makes the loop thread return from `epoll_wait` and look at its state
    /// again. Safe from any thread; one `write` to an eventfd.
    public func wake() { core.wake() }

    /// Stops the loop: no handler starts after this returns, and the loop's
    /// own descriptors (epoll, eventfd, pending timers) are closed. Waits for
    /// a handler in progress, unless called from one; then the descriptors
    /// are closed when that handler returns. Safe to call more than once.
    public func stop() {
        core.condition.withLock { core.stopping = true }
        core.wake()
        thread.join()
        // Now, or (stopped from a handler) when the loop thread is done with them.
        core.close()
    }
}
