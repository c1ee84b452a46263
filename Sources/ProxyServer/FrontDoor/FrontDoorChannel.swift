import HummingbirdCore
import Logging
import NIOCore
import ProxyHTTP2
import ProxyTLS

/// The front door's child channel: TLS through OpenSSL, then HTTP/1.1 (Hummingbird's channel, with the
/// request-head guard) or HTTP/2 (nghttp2) as ALPN decided; without TLS, HTTP/1.1 only.
public struct FrontDoorChannel: ServerChildChannel {
    /// The protocol a connection speaks once TLS is up.
    public enum Negotiated: Sendable {
        case http1(HTTP1Channel.Value)
        case http2(AsyncStream<H2ServerStream>)
        /// The handshake failed or the client left before it finished: nothing to serve.
        case closed
    }

    /// Setup must finish before NIO activates the channel, so with TLS the protocol is still a future here:
    /// it resolves when the handshake's ALPN result has configured the pipeline.
    public struct Value: ServerChildChannelValue {
        public let negotiated: EventLoopFuture<Negotiated>
        public let channel: any Channel
    }

    public struct TLS: Sendable {
        var contexts: TLSContextStore
        var handshakeTimeout: TimeAmount
    }

    let http1: RequestHeadGuardChannel<HTTP1Channel>
    let http2: HTTP2StreamResponder
    let http2Configuration: H2ServerHandler.Configuration
    let tls: TLS?

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard let tls else {
            return http1.setup(channel: channel, logger: logger).map {
                Value(negotiated: channel.eventLoop.makeSucceededFuture(.http1($0)), channel: channel)
            }
        }
        let negotiated = channel.eventLoop.makePromise(of: String?.self)
        let waiter = ALPNWaiter(negotiated: negotiated)
        do {
            let session = try tls.contexts.current.makeServerSession()
            let handler = TLSHandler(session: session, handshakeTimeout: tls.handshakeTimeout, logger: logger)
            handler.firstInPipeline = true  // the channel is new: nothing stands before it
            try channel.pipeline.syncOperations.addHandlers(handler, waiter)
        } catch {
            logger.error("TLS session not created", metadata: ["error": "\(error)"])
            channel.close(promise: nil)
            return channel.eventLoop.makeSucceededFuture(
                Value(negotiated: channel.eventLoop.makeSucceededFuture(.closed), channel: channel))
        }
        let loopBoundWaiter = NIOLoopBound(waiter, eventLoop: channel.eventLoop)
        let configured = negotiated.futureResult.flatMap {
            (negotiatedProtocol: String?) -> EventLoopFuture<Negotiated> in
            let protocolReady: EventLoopFuture<Negotiated>
            if negotiatedProtocol == "h2" {
                protocolReady = channel.eventLoop.makeCompletedFuture {
                    let (handler, streams) = try H2ServerHandler.make(configuration: http2Configuration)
                    // The HTTP/2 handler flushes once per loop turn itself.
                    try channel.pipeline.syncOperations.handler(type: TLSHandler.self).defersFlushes = false
                    try channel.pipeline.syncOperations.addHandler(handler)
                    return .http2(streams)
                }
            } else {
                protocolReady = http1.setup(channel: channel, logger: logger).map { .http1($0) }
            }
            return protocolReady.always { _ in loopBoundWaiter.value.release() }
        }.flatMapError { _ in
            channel.close(promise: nil)
            return channel.eventLoop.makeSucceededFuture(.closed)
        }
        return channel.eventLoop.makeSucceededFuture(Value(negotiated: configured, channel: channel))
    }

    public func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(value.channel.eventLoop)) {
            await serve(value, logger: logger)
        }
    }

    private func serve(_ value: Value, logger: Logger) async {
        let negotiated = (try? await value.negotiated.get()) ?? .closed
        switch negotiated {
        case .http1(let connection):
            await http1.handle(value: connection, logger: logger)
        case .http2(let streams):
            let channel = value.channel
            await withDiscardingTaskGroup { group in
                for await stream in streams {
                    group.addTask { await http2.serve(stream, channel: channel) }
                }
            }
            try? await channel.close()
        case .closed:
            break
        }
    }
}

/// Holds plaintext back until the protocol ALPN chose has its handlers in the pipeline, then replays it and
/// leaves. A client may send its first request in the same flight as its last handshake message.
final class ALPNWaiter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let negotiated: EventLoopPromise<String?>
    private var held: [NIOAny] = []
    private var context: ChannelHandlerContext?

    init(negotiated: EventLoopPromise<String?>) {
        self.negotiated = negotiated
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted(let negotiatedProtocol) = event as? TLSUserEvent {
            negotiated.succeed(negotiatedProtocol)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        held.append(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        negotiated.fail(ChannelError.eof)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        negotiated.fail(error)
        context.fireErrorCaught(error)
    }

    /// The protocol's handlers are in place: replay what arrived meanwhile and step out of the pipeline.
    func release() {
        guard let context else { return }
        let replay = held
        held = []
        for data in replay { context.fireChannelRead(data) }
        if !replay.isEmpty { context.fireChannelReadComplete() }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

@available(*, unavailable)
extension ALPNWaiter: Sendable {}
