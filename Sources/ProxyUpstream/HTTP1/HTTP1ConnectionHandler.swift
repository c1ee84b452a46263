import NIOCore
import NIOHTTP1
import ProxyTLS

/// One upstream HTTP/1.1 connection as a NIO handler above the HTTP/1.1 codec (behind a client `TLSHandler`, or
/// on plain TCP): one exchange at a time. The channel runs with autoRead off and this handler asks for bytes
/// itself — while a response head is awaited, while the connection is idle (so a server's close is noticed), and
/// while the body's consumer keeps up. A consumer that stops reading stops the socket reads, TCP's window fills
/// and the server's writes stall: backpressure all the way to the origin.
///
/// Everything here runs on the channel's event loop; async callers reach it through `NIOLoopBound`.
final class HTTP1ConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Never
    typealias OutboundOut = HTTPClientRequestPart
    typealias Token = HTTP1PoolStateMachine.RequestID
    typealias Body = NIOThrowingAsyncSequenceProducer<
        ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, BodyDemand
    >

    /// What the pool needs to hear about the connection.
    enum ConnectionEvent: Sendable {
        /// TCP and TLS are up; the connection can carry a request.
        case established
        /// The exchange is over; `reusable` when the response was read to its end, the request was fully written
        /// and neither side said `connection: close`.
        case requestFinished(reusable: Bool)
        /// The connection is gone; why, as far as known.
        case closed(reason: String)
    }

    struct Response: Sendable {
        var head: HTTPResponseHead
        var body: Body
    }

    private struct Exchange {
        var token: Token
        var reused: Bool
        var response: EventLoopPromise<Response>
    }

    private enum State {
        case connecting
        case idle
        case awaitingHead(Exchange)
        case streaming(Exchange, source: Body.Source, keepAlive: Bool, wantsBytes: Bool)
        case closed
    }

    /// Response body chunks buffered for the consumer before reads stop (elements, each one socket read or TLS
    /// record at most).
    static let bodyBuffer = NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark(
        lowWatermark: 2, highWatermark: 8)

    private let origin: UpstreamOrigin
    private let onEvent: @Sendable (ConnectionEvent) -> Void
    private var state = State.connecting
    private var context: ChannelHandlerContext?
    /// The last exchange's request reached the socket in full (an early response must not leave half a request
    /// on a connection that is then reused).
    private var requestWritten = false
    /// The first failure seen, reported with `.closed`.
    private var failure: String?
    /// `responseHeadTimeout` of the exchange awaiting its head.
    private var headTimer: Scheduled<Void>?
    private var reportedClosed = false

    init(origin: UpstreamOrigin, onEvent: @escaping @Sendable (ConnectionEvent) -> Void) {
        self.origin = origin
        self.onEvent = onEvent
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive, !origin.isTLS { established(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if !origin.isTLS { established(context: context) }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted(let negotiated) = event as? TLSUserEvent {
            // Only `http/1.1` is offered on these connections; a server that answers `h2` anyway would take our
            // request line for a broken preface.
            if negotiated == nil || negotiated == "http/1.1" {
                established(context: context)
            } else {
                failure = "upstream selected \(negotiated ?? "") on an HTTP/1.1 connection"
                context.close(promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func established(context: ChannelHandlerContext) {
        guard case .connecting = state else { return }
        state = .idle
        context.read()  // an idle connection listens, so that a server's close is seen at once
        onEvent(.established)
    }

    // MARK: - Requests (called on the event loop)

    /// Writes the request and waits for the response head. The head and the body reader arrive through
    /// `response`; a connection that closes first fails it (with `HTTP1StaleConnection` when `reused`), and so
    /// does `headTimeout` (with `HTTP1HeadTimeout`, closing the connection). The timer starts here, on the loop,
    /// so it cannot fire before the exchange exists.
    func execute(
        _ head: HTTPRequestHead, body: ByteBuffer?, token: Token, reused: Bool, headTimeout: TimeAmount,
        response: EventLoopPromise<Response>
    ) {
        guard case .idle = state, let context else {
            response.fail(UpstreamError.closed(origin: origin.description))
            return
        }
        state = .awaitingHead(Exchange(token: token, reused: reused, response: response))
        headTimer = context.eventLoop.assumeIsolated().scheduleTask(in: headTimeout) { [self] in
            guard case .awaitingHead(let exchange) = state, exchange.token == token, let context = self.context
            else { return }
            abort(context: context, HTTP1HeadTimeout(), reason: "no response head in time")
        }
        requestWritten = false
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body, body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        written.futureResult.assumeIsolated().whenSuccess { [self] in
            if token == currentToken { requestWritten = true }
        }
        context.read()
    }

    /// The caller gave up (client gone, head timeout, abandoned body): the exchange fails and the connection
    /// closes — with HTTP/1.1 that is the only way to stop a response.
    func cancel(_ token: Token) {
        guard token == currentToken, let context else { return }
        abort(context: context, CancellationError(), reason: "request cancelled")
    }

    /// The body's consumer took enough to want more.
    func resumeReading(_ token: Token) {
        guard case .streaming(let exchange, let source, let keepAlive, false) = state, exchange.token == token
        else { return }
        state = .streaming(exchange, source: source, keepAlive: keepAlive, wantsBytes: true)
        context?.read()
    }

    private var currentToken: Token? {
        switch state {
        case .awaitingHead(let exchange), .streaming(let exchange, _, _, _): exchange.token
        case .connecting, .idle, .closed: nil
        }
    }

    // MARK: - Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard case .awaitingHead(let exchange) = state else {
                return abort(context: context, protocolError("a response nobody asked for"), reason: "unsolicited")
            }
            headTimer?.cancel()
            headTimer = nil
            let demand = BodyDemand(connection: NIOLoopBound(self, eventLoop: context.eventLoop), token: exchange.token)
            let body = Body.makeSequence(backPressureStrategy: Self.bodyBuffer, finishOnDeinit: false, delegate: demand)
            state = .streaming(exchange, source: body.source, keepAlive: head.isKeepAlive, wantsBytes: true)
            exchange.response.succeed(Response(head: head, body: body.sequence))
        case .body(let bytes):
            // Bytes of a read already under way still go to the consumer after it asked us to stop; the
            // next read is what waits.
            guard case .streaming(let exchange, let source, let keepAlive, _) = state else { return }
            if case .stopProducing = source.yield(bytes) {
                state = .streaming(exchange, source: source, keepAlive: keepAlive, wantsBytes: false)
            }
        case .end:
            guard case .streaming(_, let source, let keepAlive, _) = state else { return }
            let reusable = keepAlive && requestWritten
            state = .idle
            // The pool hears first: a consumer that sees the end and sends its next request at once finds the
            // connection idle again instead of opening another.
            onEvent(.requestFinished(reusable: reusable))
            source.finish()
            if !reusable { context.close(promise: nil) }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        switch state {
        case .idle, .awaitingHead, .streaming(_, _, _, true): context.read()
        case .connecting, .streaming, .closed: break
        }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        headTimer?.cancel()
        headTimer = nil
        let reason = failure ?? "closed by the upstream"
        switch state {
        case .awaitingHead(let exchange):
            // Nothing of a response arrived. On a connection that served before, this is most likely the server
            // closing it as idle while our request was on its way (RFC 9112 §9.3.1): worth one retry.
            if exchange.reused {
                exchange.response.fail(HTTP1StaleConnection(reason: reason))
            } else {
                exchange.response.fail(failureError())
            }
        case .streaming(_, let source, _, _):
            source.finish(failureError())
        case .connecting, .idle, .closed:
            break
        }
        state = .closed
        if !reportedClosed {
            reportedClosed = true
            onEvent(.closed(reason: reason))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if failure == nil {
            failure =
                if let tls = error as? OpenSSLError {
                    "TLS: \(tls)"
                } else if error is HTTPParserError {
                    "malformed HTTP/1.1 response: \(error)"
                } else {
                    "\(error)"
                }
        }
        context.close(promise: nil)
    }

    // MARK: - Helpers

    /// Ends the current exchange with `error` now (not when the close completes: a TLS close waits for
    /// close_notify to be flushed) and closes the connection.
    private func abort(context: ChannelHandlerContext, _ error: any Error, reason: String) {
        headTimer?.cancel()
        headTimer = nil
        switch state {
        case .awaitingHead(let exchange): exchange.response.fail(error)
        case .streaming(_, let source, _, _): source.finish(error)
        case .connecting, .idle, .closed: break
        }
        if failure == nil { failure = reason }
        state = .closed
        context.close(promise: nil)
    }

    private func failureError() -> UpstreamError {
        guard let failure else { return .closed(origin: origin.description) }
        return .protocolError(origin: origin.description, reason: failure)
    }

    private func protocolError(_ reason: String) -> UpstreamError {
        .protocolError(origin: origin.description, reason: reason)
    }
}

@available(*, unavailable)
extension HTTP1ConnectionHandler: Sendable {}

/// The response body's demand, reported back to the connection's event loop. Always hops (never calls the
/// handler inline) so the handler is never re-entered from inside a yield or finish.
struct BodyDemand: NIOAsyncSequenceProducerDelegate {
    let connection: NIOLoopBound<HTTP1ConnectionHandler>
    let token: HTTP1ConnectionHandler.Token

    func produceMore() {
        let (connection, token) = (connection, token)
        connection.eventLoop.execute { connection.value.resumeReading(token) }
    }

    /// The consumer finished, dropped the body or was cancelled. After the end of the body this is a no-op; before
    /// it, the response is abandoned and the connection must not be reused.
    func didTerminate() {
        let (connection, token) = (connection, token)
        connection.eventLoop.execute { connection.value.cancel(token) }
    }
}

/// The connection closed before any response byte on a connection that had sat idle or carried a request before.
struct HTTP1StaleConnection: Error, Sendable {
    var reason: String
}

/// No response head within the exchange's `responseHeadTimeout`.
struct HTTP1HeadTimeout: Error, Sendable {}
