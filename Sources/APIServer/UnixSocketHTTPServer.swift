import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// An HTTP/1.1 server on a Unix socket, on SwiftNIO's event loop: the
/// threads it reads and writes on are its own, so no client, however slow
/// or broken, can hold up anything else in the process.
public final class UnixSocketHTTPServer: Sendable {
    /// The socket's path.
    public let path: String
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel

    /// Binds `path` (a stale socket file there is replaced) and starts serving.
    public init(path: String, handler: any HTTPRequestHandler, limits: ServerLimits = ServerLimits()) throws {
        self.path = path
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let queue = DispatchQueue(label: "swiftvmm.api")
        let counter = ConnectionCounter()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelInitializer { channel in
                guard counter.open(limit: limits.maximumConnections) else { return channel.close() }
                channel.closeFuture.whenComplete { _ in counter.close() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    let timeout = TimeAmount.nanoseconds(
                        limits.idleTimeout.components.seconds * 1_000_000_000 + limits.idleTimeout.components.attoseconds / 1_000_000_000)
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: timeout))
                    try channel.pipeline.syncOperations.addHandler(
                        RequestChannelHandler(handler: handler, queue: queue, maximumBodyBytes: limits.maximumBodyBytes))
                }
            }
        unlink(path)
        do {
            channel = try bootstrap.bind(unixDomainSocketPath: path).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        self.group = group
    }

    /// Runs `body` on the server's event loop thread and waits for it (the
    /// sandbox installs that thread's seccomp filter this way).
    public func runOnEventLoop(_ body: @escaping @Sendable () -> Void) throws {
        try group.next().submit(body).wait()
    }

    /// Stops serving and removes the socket file.
    public func close() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
        unlink(path)
    }
}

/// Counts open connections (touched on the event loop only, but NIO's
/// `Sendable` rules ask for a lock to say so).
final class ConnectionCounter: @unchecked Sendable {
    private var count = 0
    private let lock = NIOLock()

    func open(limit: Int) -> Bool {
        lock.withLock {
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func close() { lock.withLock { count -= 1 } }
}
