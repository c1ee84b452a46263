import NIOCore
import NIOHTTP1

/// HTTP/1.x persistence rules Hummingbird leaves to us (RFC 9112 §9.3): a request with `Connection: close`, or
/// an HTTP/1.0 request without `Connection: keep-alive`, is the last on its connection, and the response says
/// so with `Connection: close`; an HTTP/1.0 keep-alive request gets `Connection: keep-alive` back.
///
/// Sits just before the HTTP/1 ↔ HTTP types codec, where the request version is still known. Hummingbird ends
/// the connection after a response to a request whose `connection` field is exactly `close`, so that is what
/// such a request carries from here on.
final class KeepAlivePolicy: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Persistence {
        case keepAlive
        case keepAliveHTTP10
        case close
    }

    /// One entry per request whose response has not started, oldest first (pipelining).
    private var pending = CircularBuffer<Persistence>()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        let persistence: Persistence
        if !head.isKeepAlive {
            persistence = .close
            head.headers.replaceOrAdd(name: "connection", value: "close")
        } else {
            persistence = head.version.major == 1 && head.version.minor == 0 ? .keepAliveHTTP10 : .keepAlive
        }
        pending.append(persistence)
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .head(var head) = unwrapOutboundIn(data), let persistence = pending.popFirst() else {
            context.write(data, promise: promise)
            return
        }
        switch persistence {
        case .close: head.headers.replaceOrAdd(name: "connection", value: "close")
        case .keepAliveHTTP10: head.headers.replaceOrAdd(name: "connection", value: "keep-alive")
        case .keepAlive: break
        }
        context.write(wrapOutboundOut(.head(head)), promise: promise)
    }
}

@available(*, unavailable)
extension KeepAlivePolicy: Sendable {}
