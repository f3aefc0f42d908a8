import Dispatch
import NIOCore
import NIOHTTP1

/// One connection: collects a request's head and body (capped), hands the
/// request to the handler's queue, and writes the answer back on the event loop.
final class RequestChannelHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let handler: any HTTPRequestHandler
    private let queue: DispatchQueue
    private let maximumBodyBytes: Int
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var refused = false
    /// A request is with the handler: the client waits for its answer, which may take long (a snapshot).
    private var inFlight = false

    init(handler: any HTTPRequestHandler, queue: DispatchQueue, maximumBodyBytes: Int) {
        self.handler = handler
        self.queue = queue
        self.maximumBodyBytes = maximumBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
            refused = false
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > maximumBodyBytes {
                refuseTooLarge(context: context, size: length)
            }
        case .body(var buffer):
            guard !refused else { return }
            if body.count + buffer.readableBytes > maximumBodyBytes {
                refuseTooLarge(context: context, size: body.count + buffer.readableBytes)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard !refused, let head else { return }
            self.head = nil
            let path = String(head.uri.prefix { $0 != "?" })
            let request = HTTPRequest(method: head.method.rawValue, path: path, body: body)
            body = []
            let keepAlive = head.isKeepAlive
            let handler = self.handler
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            inFlight = true
            queue.async {
                handler.handle(request) { response in
                    loop.execute {
                        let (this, context) = bound.value
                        this.inFlight = false
                        this.write(response, keepAlive: keepAlive, context: context)
                    }
                }
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A half request, or a connection left open and silent: close it.
        if event is IdleStateHandler.IdleStateEvent {
            if !inFlight { context.close(promise: nil) }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }

    private func refuseTooLarge(context: ChannelHandlerContext, size: Int) {
        refused = true
        let fault =
            "{\"fault_message\": \"Request payload with size \(size) is larger than the limit of \(maximumBodyBytes) allowed by server.\"}"
        write(HTTPResponse(status: 413, json: fault), keepAlive: false, context: context)
    }

    private func write(_ response: HTTPResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Server", value: "swiftvmm")
        if !response.body.isEmpty { headers.add(name: "Content-Type", value: "application/json") }
        headers.add(name: "Content-Length", value: String(response.body.count))
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !response.body.isEmpty {
            var buffer = context.channel.allocator.buffer(capacity: response.body.count)
            buffer.writeBytes(response.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
