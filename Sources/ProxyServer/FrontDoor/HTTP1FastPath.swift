import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTPTypes
import ProxyHTTP2

/// The relay's fast path for HTTP/1.1 clients (`FastRelay`): sits in Hummingbird's HTTP/1.1 pipeline just in
/// front of its async channel, behind the connection-state handler (which so still sees every request and
/// response, and keeps its idle timeout off while one is under way), and takes a `/v1` request over on the event
/// loop when Hummingbird has nothing outstanding on the connection.
///
/// Requests stay in order: while a taken request's response is under way, pipelined parts wait here (and reading
/// pauses); while Hummingbird still answers a request, later ones go to it too. A request the relay hands back
/// (`handOver`) goes to Hummingbird with its body and an `x-claude-proxy-handover` id that finds its
/// continuation in `RelayHandovers`; a client's own copy of that field never gets past here.
final class HTTP1FastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum Inbound {
        /// Between requests.
        case idle
        /// The current request's parts go to Hummingbird.
        case forwarding
        /// The current request is the relay's: its body goes to the stream.
        case receiving(FastRelayStream)
        /// The relay's request was read whole and its response is under way: later parts wait.
        case responding(FastRelayStream)
        /// The relay answered before the request's end (413): the rest of its body is read and dropped.
        case discarding
    }

    private let relay: FastRelay
    private let handovers: RelayHandovers
    private var inbound = Inbound.idle
    /// Requests given to Hummingbird whose response has not ended: until then new requests go to it too.
    private var forwarded = 0
    /// Parts that arrived while a taken request's response was under way.
    private var held = CircularBuffer<HTTPRequestPart>()
    private var readRequested = false
    private var draining = false
    /// The head of the request the relay has, and which exchange is current (a finished one's calls are ignored).
    private var head: HTTPRequest?
    private var exchange = 0
    private var context: ChannelHandlerContext?

    init(relay: FastRelay, handovers: RelayHandovers) {
        self.relay = relay
        self.handovers = handovers
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// Also how a closed connection is heard of: Hummingbird's connection-state handler in front of this one does
    /// not pass `channelInactive` on, and the pipeline's handlers are removed when the channel closes.
    func handlerRemoved(context: ChannelHandlerContext) {
        clientGone()
        self.context = nil
    }

    // MARK: - Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if held.isEmpty {
            deliver(part, context: context)
        } else {
            held.append(part)
        }
    }

    private func deliver(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch inbound {
        case .receiving(let stream):
            switch part {
            case .body(let bytes):
                stream.received(bytes)
            case .end:
                inbound = .responding(stream)
                stream.requestEnded()
            case .head:
                break  // the decoder ends a request before the next head
            }
        case .responding:
            held.append(part)
        case .discarding:
            if case .end = part { inbound = .idle }
        case .forwarding:
            if case .end = part { inbound = .idle }
            context.fireChannelRead(wrapInboundOut(part))
        case .idle:
            guard case .head(var request) = part else {
                context.fireChannelRead(wrapInboundOut(part))
                return
            }
            if request.headerFields[RelayHandovers.field] != nil { request.headerFields[RelayHandovers.field] = nil }
            if forwarded == 0 {
                exchange &+= 1
                let client = HTTP1InterceptedRequest(handler: self, exchange: exchange, eventLoop: context.eventLoop)
                if let stream = relay.intercept(request, client: client) {
                    head = request
                    inbound = .receiving(stream)
                    return
                }
            }
            forwarded += 1
            inbound = .forwarding
            context.fireChannelRead(wrapInboundOut(.head(request)))
        }
    }

    /// The relay's exchange is over (its response ended, or it handed the request over): go on with what waited.
    private func exchangeEnded() {
        exchange &+= 1
        head = nil
        if case .receiving = inbound {
            inbound = .discarding
        } else {
            inbound = .idle
        }
        guard !draining, let context else { return }
        draining = true
        defer { draining = false }
        var delivered = false
        while !held.isEmpty {
            if case .responding = inbound { break }
            deliver(held.removeFirst(), context: context)
            delivered = true
        }
        if delivered { context.fireChannelReadComplete() }
        if held.isEmpty, readRequested {
            readRequested = false
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .responding(let stream) = inbound { stream.writable() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientGone()
        context.fireChannelInactive()
    }

    private func clientGone() {
        held.removeAll()
        switch inbound {
        case .receiving(let stream), .responding(let stream):
            inbound = .idle
            exchange &+= 1
            stream.closed(ChannelError.eof)
        case .idle, .forwarding, .discarding:
            break
        }
    }

    // MARK: - Outbound

    /// Reading pauses while pipelined parts wait; until then it goes on, so a client that leaves is noticed.
    func read(context: ChannelHandlerContext) {
        if held.isEmpty {
            context.read()
        } else {
            readRequested = true
        }
    }

    /// Hummingbird's responses: one ended is one request less outstanding there.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { forwarded = max(0, forwarded - 1) }
        context.write(data, promise: promise)
    }

    // MARK: - The relay's side (HTTP1InterceptedRequest)

    fileprivate func respond(_ exchange: Int, _ fields: [H2Field], endStream: Bool) throws {
        guard exchange == self.exchange, let context else { throw ChannelError.ioOnClosedChannel }
        var response = HTTPResponse(status: .ok)
        for field in fields {
            if field.name == ":status" {
                guard let code = Int(field.value) else { throw ChannelError.inappropriateOperationForState }
                response.status = HTTPResponse.Status(code: code)
            } else if let name = HTTPField.Name(field.name) {
                response.headerFields.append(HTTPField(name: name, value: field.value))
            }
        }
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        if endStream {
            end(context)
        } else {
            context.flush()
        }
    }

    fileprivate func write(_ exchange: Int, _ bytes: ByteBuffer, endStream: Bool) -> Bool {
        guard exchange == self.exchange, let context else { return false }
        if bytes.readableBytes > 0 { context.write(wrapOutboundOut(.body(bytes)), promise: nil) }
        if endStream {
            end(context)
            return true
        }
        context.flush()
        return context.channel.isWritable
    }

    private func end(_ context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        exchangeEnded()
    }

    fileprivate func abort(_ exchange: Int) {
        guard exchange == self.exchange, let context else { return }
        self.exchange &+= 1
        context.close(promise: nil)
    }

    fileprivate func handOver(_ exchange: Int, body: ByteBuffer, continuation: ProxyRelay.RelayContinuation) -> Bool {
        guard exchange == self.exchange, let context, context.channel.isActive, var request = head else { return false }
        request.headerFields[RelayHandovers.field] = handovers.deposit(continuation)
        forwarded += 1
        context.fireChannelRead(wrapInboundOut(.head(request)))
        if body.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(.body(body))) }
        context.fireChannelRead(wrapInboundOut(.end(nil)))
        context.fireChannelReadComplete()
        exchangeEnded()
        return true
    }
}

/// The client's side of an HTTP/1.1 request the relay took over: calls go to the connection's `HTTP1FastPath`,
/// and are ignored once that exchange is over.
struct HTTP1InterceptedRequest: FastRelayClient {
    /// Strong: the handler holds the relay's stream only while its exchange is current, which ends the cycle.
    fileprivate let handler: HTTP1FastPath
    fileprivate let exchange: Int
    let eventLoop: any EventLoop

    func respond(_ fields: [H2Field], endStream: Bool) throws {
        try handler.respond(exchange, fields, endStream: endStream)
    }

    func write(_ bytes: ByteBuffer, endStream: Bool) -> Bool {
        handler.write(exchange, bytes, endStream: endStream)
    }

    /// HTTP/1.1 has no window to give back: reading is the connection's.
    func consumed(_ count: Int) {}

    func abort() {
        handler.abort(exchange)
    }

    func handOver(fields: [H2Field], body: ByteBuffer, handover: ProxyRelay.RelayContinuation) -> Bool {
        handler.handOver(exchange, body: body, continuation: handover)
    }
}

@available(*, unavailable)
extension HTTP1FastPath: Sendable {}
