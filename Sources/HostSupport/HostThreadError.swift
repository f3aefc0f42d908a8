/// Why a thread could not be started.
public enum HostThreadError: Error, Equatable, CustomStringConvertible {
    /// The stack size was refused (`pthread_attr_setstacksize`: below `PTHREAD_STACK_MIN`).
    case invalidStackSize(Int)
    /// `pthread_create` failed with `error` (`EAGAIN`: out of threads or memory).
    case cannotCreate(error: Int32)

    public var description: String {
        switch self {
        case .invalidStackSize(let size): return "invalid thread stack size \(size)"
        case .cannotCreate(let error): return "cannot create a thread (error \(error))"
        }
    }
}
