import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Slowloris protection: once the first byte of a request arrives, its whole head must arrive within
/// `timeout`, or the connection is closed. Waiting for a request to start is the keep-alive idle timeout's job
/// (Hummingbird's `HTTPConnectionStateHandler`), not this one's — like HAProxy's `timeout http-request`.
///
/// Sits on plaintext bytes, in front of the HTTP/1.1 decoder; `RequestHeadObserver` (behind the decoder) tells it
/// when a head has been parsed and when the response is done. `HTTP1DirectPath`, in front of it, passes it only the
/// bytes it gives NIO's decoder, and tells it itself of those it reads (`bytesArrived`, `readCompleted`) and of
/// their heads and responses: a read it keeps goes through one handler fewer.
final class RequestHeadTimer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let timeout: TimeAmount
    private let logger: Logger
    /// Requests whose head was parsed and whose response has not ended.
    private var outstanding = 0
    private var deadline: Scheduled<Void>?
    /// Bytes of a request arrived and its head has not been parsed yet.
    private var awaitingHead = false
    private var context: ChannelHandlerContext?

    init(timeout: TimeAmount, logger: Logger) {
        self.timeout = timeout
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytesArrived()
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        armIfAwaitingHead(context)
        context.fireChannelReadComplete()
    }

    /// Bytes of a request arrived. A request head usually arrives whole in one read; the decoder behind (or the
    /// direct path) reports it before this read completes. Only a head still missing at read-complete needs a timer
    /// (no timer churn per request).
    func bytesArrived() {
        if outstanding == 0 { awaitingHead = true }
    }

    /// A read the direct path kept has completed.
    func readCompleted() {
        if let context { armIfAwaitingHead(context) }
    }

    private func armIfAwaitingHead(_ context: ChannelHandlerContext) {
        guard awaitingHead, deadline == nil else { return }
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            deadline = nil
            logger.info("closing connection: request head not received in time", metadata: ["timeout": "\(timeout)"])
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }

    /// Bytes of a next request arrived while the last one was answered: its head gets the timeout from now.
    func headStarted() {
        guard outstanding == 0, let context else { return }
        awaitingHead = true
        armIfAwaitingHead(context)
    }

    func headReceived() {
        outstanding += 1
        awaitingHead = false
        deadline?.cancel()
        deadline = nil
    }

    func responseEnded() {
        outstanding = max(0, outstanding - 1)
    }
}

/// Behind the HTTP/1.1 codec: reports request heads and response ends to the `RequestHeadTimer`, and answers a
/// request whose header section is over the limit with 431 (RFC 6585 §5) instead of Hummingbird's plain 400.
final class RequestHeadObserver: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var timer: RequestHeadTimer?

    func handlerAdded(context: ChannelHandlerContext) {
        timer = try? context.pipeline.syncOperations.handler(type: RequestHeadTimer.self)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { timer?.headReceived() }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { timer?.responseEnded() }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError, parserError == .headerOverflow else {
            context.fireErrorCaught(error)
            return
        }
        let body =
            #"{"type":"error","error":{"type":"invalid_request_error","message":"request header fields too large"}}"#
        var response = HTTPResponse(status: .init(code: 431, reasonPhrase: "Request Header Fields Too Large"))
        response.headerFields[.contentType] = "application/json"
        response.headerFields[.contentLength] = "\(body.utf8.count)"
        response.headerFields[.connection] = "close"
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(string: body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

/// Puts the request-head guard, the keep-alive policy and the connection's front (`HTTP1FastPath`: the relay's
/// fast path, the idle timeout, graceful shutdown) around a Hummingbird HTTP/1.1 child channel.
public struct RequestHeadGuardChannel<Base: ServerChildChannel>: ServerChildChannel {
    public typealias Value = Base.Value

    let base: Base
    let timeout: TimeAmount
    /// The keep-alive idle timeout, kept by `HTTP1FastPath` (the base channel's own must be off).
    let idleTimeout: TimeAmount
    /// The relay's fast path for HTTP/1.1 requests.
    let fastPath: FastRelay?
    /// The decoder's head limits, which `HTTP1DirectPath` keeps too.
    let headLimits: HTTP1DirectHead.Limits

    init(
        _ base: Base, timeout: TimeAmount, idleTimeout: TimeAmount, fastPath: FastRelay? = nil,
        headLimits: HTTP1DirectHead.Limits = .standard
    ) {
        self.base = base
        self.timeout = timeout
        self.idleTimeout = idleTimeout
        self.fastPath = fastPath
        self.headLimits = headLimits
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(RequestHeadTimer(timeout: timeout, logger: logger))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }.flatMapThrowing { value in
            let operations = channel.pipeline.syncOperations
            let codec = try operations.context(handlerType: HTTP1ToHTTPServerCodec.self)
            let keepAlive = KeepAlivePolicy()
            try operations.addHandler(keepAlive, position: .before(codec.handler))
            try operations.addHandler(
                HTTP1FastPath(relay: fastPath, idleTimeout: idleTimeout), position: .before(keepAlive))
            if let fastPath {
                let timer = try operations.handler(type: RequestHeadTimer.self)
                try operations.addHandler(
                    HTTP1DirectPath(relay: fastPath, limits: headLimits), position: .before(timer))
            }
            return value
        }
    }

    public func handle(value: Base.Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

extension RequestHeadGuardChannel: HTTPChannelHandler where Base: HTTPChannelHandler {
    public var responder: HTTPChannelHandler.Responder { base.responder }
}

@available(*, unavailable)
extension RequestHeadTimer: Sendable {}

@available(*, unavailable)
extension RequestHeadObserver: Sendable {}
