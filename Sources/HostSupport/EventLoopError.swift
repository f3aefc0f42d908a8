/// Why an `EventLoop` call failed.
public enum EventLoopError: Error, Equatable, CustomStringConvertible {
    /// A kernel object the loop needs could not be made (`epoll_create1`,
    /// `eventfd` or `timerfd_create` failed with `errno`).
    case cannotCreate(what: String, errno: Int32)
    /// The loop's thread could not be started.
    case cannotStartThread(HostThreadError)
    /// `epoll_ctl` refused `fileDescriptor` (`EEXIST`: registered already;
    /// `EPERM`: a regular file, which epoll cannot watch).
    case cannotRegister(fileDescriptor: Int32, errno: Int32)
    /// `fileDescriptor` is not registered with this loop.
    case notRegistered(fileDescriptor: Int32)
    /// The loop has been stopped.
    case stopped

    public var description: String {
        switch self {
        case .cannotCreate(let what, let errno): return "cannot create the event loop's \(what) (errno \(errno))"
        case .cannotStartThread(let error): return "cannot start the event loop thread: \(error)"
        case .cannotRegister(let fd, let errno): return "cannot watch file descriptor \(fd) (errno \(errno))"
        case .notRegistered(let fd): return "file descriptor \(fd) is not registered with the event loop"
        case .stopped: return "the event loop has stopped"
        }
    }
}
