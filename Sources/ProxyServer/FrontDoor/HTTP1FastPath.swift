import NIOCore
import NIOHTTP1
import ProxyHTTP2
import ProxyUpstream

/// The front of every HTTP/1.1 connection, right behind the request decoder: it takes a `/v1` request over on the
/// event loop (the relay's fast path, `FastRelay`) when nothing else is outstanding on the connection, and passes
/// every other request on to Hummingbird's handlers (keep-alive policy, HTTP types codec, async channel). A
/// connection's first requests usually never reach it: `HTTP1DirectPath`, in front of the decoder, serves plain
/// `/v1` requests straight from the bytes until one is not, and from then on the requests come here.
///
/// Because it sees every request and every response (and hears of the direct path's), it also keeps the
/// connection's clock: the keep-alive idle
/// timeout (`limits.idle_timeout`; Hummingbird's own is off, as that one cannot see the requests taken here) and
/// graceful shutdown (a quiesce closes the connection once nothing is in flight).
///
/// Requests stay in order: while a taken request's response is under way, later parts wait here (reading pauses
/// once a whole request or 1 MiB waits); while Hummingbird still answers a request, later ones go to it too. A request the relay hands back
/// (`handOver`) goes to Hummingbird with its body and an `x-claude-proxy-handover` id that finds its continuation
/// in `RelayHandovers`; a client's own copy of that field never gets past here.
final class HTTP1FastPath: ChannelDuplexHandler, RemovableChannelHandler, HTTP1RelayConnection {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

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

    private let relay: FastRelay?
    private let handovers: RelayHandovers?
    private let idleTimeout: TimeAmount
    private var inbound = Inbound.idle
    /// Requests given to Hummingbird whose response has not ended: until then new requests go to it too.
    private var forwarded = 0
    /// Parts (and a decoder error) that arrived while a taken request's response was under way.
    private var held = CircularBuffer<HTTPServerRequestPart>()
    private var heldBytes = 0
    private var heldError: (any Error)?
    private var readRequested = false
    private var draining = false
    /// The head of the request the relay has, and which exchange is current (a finished one's calls are ignored).
    private var head: HTTPRequestHead?
    private var exchange = 0
    /// The relay's request said `Connection: close`: the connection ends with its response (and, when that came
    /// before the request's end, once the rest of its body is read).
    private var closeAfterExchange = false
    private var closeWhenDiscarded = false
    /// Body bytes dropped in `.discarding`; past `discardLimit` the connection is closed instead.
    private var discarded = 0
    /// Hummingbird's close of a connection whose request it answered before that request's end, waiting for the
    /// rest of the body to be read (`close(context:mode:promise:)`).
    private var deferredClose: (mode: CloseMode, promise: EventLoopPromise<Void>?)?
    private var lastActivity = NIODeadline.coarseNow
    private var idleTimer: Scheduled<Void>?
    private var closeWhenIdle = false
    private var headTimer: RequestHeadTimer?
    private var context: ChannelHandlerContext?
    /// The byte-level front (`HTTP1DirectPath`), whose requests the clock counts too. Strong, and let go when either
    /// handler is removed: a `weak` reference would give the direct path a side table, which makes every retain and
    /// release of it (several per request) take the runtime's slow path.
    var direct: HTTP1DirectPath?
    /// The hand-over id for the next request head: the direct path gave that request back for Hummingbird.
    private var pendingHandover: String?
    /// The client ended its side (TLS close_notify) while a request of ours was under way: Hummingbird, which ends
    /// the connection when it hears of it, hears of it once that request is answered.
    private var inputClosed = false

    static var front: StaticString { "http1-decoder" }

    init(relay: FastRelay?, idleTimeout: TimeAmount) {
        self.relay = relay
        self.handovers = relay?.shared.relay.handovers
        self.idleTimeout = idleTimeout
    }

    /// The channel's loop, from when the handler is added (before any exchange) on.
    private var loop: (any EventLoop)?
    var eventLoop: any EventLoop { loop! }

    func handlerAdded(context: ChannelHandlerContext) {
        loop = context.eventLoop
        self.context = context
        headTimer = try? context.pipeline.syncOperations.handler(type: RequestHeadTimer.self)
        if context.channel.isActive { armIdleTimer(context: context, in: idleTimeout) }
    }

    /// Also how a closed connection is heard of when nothing behind reports it: the pipeline's handlers are removed
    /// when the channel closes.
    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        clientGone()
        direct = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        armIdleTimer(context: context, in: idleTimeout)
        context.fireChannelActive()
    }

    // MARK: - Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActivity = .coarseNow
        let part = unwrapInboundIn(data)
        if held.isEmpty {
            deliver(part, context: context)
        } else {
            hold(part)
        }
    }

    private func hold(_ part: HTTPServerRequestPart) {
        if case .body(let bytes) = part { heldBytes += bytes.readableBytes }
        held.append(part)
    }

    /// Reading goes on while parts wait, so a client that leaves is noticed and a request that waits arrives whole,
    /// up to a whole request or `heldLimit` bytes of body.
    private var readingPaused: Bool {
        guard let last = held.last else { return false }
        if case .end = last { return true }
        return heldBytes >= Self.heldLimit
    }

    static let heldLimit = 1 << 20

    /// The most of a body answered early (413) that is read and dropped so the connection can go on, or close
    /// without a reset; a longer one ends the connection at once.
    static let discardLimit = 16 << 20

    private func deliver(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
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
            hold(part)
        case .discarding:
            guard case .end = part else {
                if case .body(let bytes) = part { discarded += bytes.readableBytes }
                // A body that goes on and on is not read to its end: the connection closes now.
                if discarded > Self.discardLimit {
                    let close = deferredClose
                    deferredClose = nil
                    context.close(mode: close?.mode ?? .all, promise: close?.promise)
                }
                return
            }
            inbound = .idle
            if let close = deferredClose {
                deferredClose = nil
                context.close(mode: close.mode, promise: close.promise)
            } else if closeWhenDiscarded {
                context.close(promise: nil)
            } else {
                closeIfQuiesced(context)
            }
        case .forwarding:
            guard case .end = part else {
                context.fireChannelRead(wrapInboundOut(part))
                return
            }
            inbound = .idle
            context.fireChannelRead(wrapInboundOut(part))
            // Answered before its end (a 413), the request was the last thing in flight.
            closeIfQuiesced(context)
            handBackIfAnswered()
        case .idle:
            guard case .head(var request) = part else {
                context.fireChannelRead(wrapInboundOut(part))
                return
            }
            if let handover = pendingHandover {
                pendingHandover = nil
                request.headers.replaceOrAdd(name: RelayHandovers.fieldName, value: handover)
                forwarded += 1
                inbound = .forwarding
                context.fireChannelRead(wrapInboundOut(.head(request)))
                return
            }
            if forwarded == 0, let relay {
                exchange &+= 1
                let client = HTTP1RelayExchange(connection: self, exchange: exchange)
                if let stream = relay.intercept(request, client: client) {
                    headTimer?.headReceived()
                    closeAfterExchange = !request.isKeepAlive
                    head = request
                    inbound = .receiving(stream)
                    return
                }
            }
            // The relay's own hand-over id is never a client's to send (a taken request's is dropped upstream).
            if request.headers.contains(name: RelayHandovers.fieldName) {
                request.headers.remove(name: RelayHandovers.fieldName)
            }
            forwarded += 1
            inbound = .forwarding
            context.fireChannelRead(wrapInboundOut(.head(request)))
        }
    }

    /// A decoder error (a malformed or oversized request) behind a taken request's response waits for it to end:
    /// what answers the error (Hummingbird's 400, our 431) must not land in the middle of that response. In the
    /// taken request itself, the relay lets go of it and the answer is that request's.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch inbound {
        case .responding:
            heldError = error
        case .receiving(let stream):
            inbound = .idle
            exchange &+= 1
            head = nil
            stream.closed(error)
            context.fireErrorCaught(error)
        case .idle, .forwarding, .discarding:
            context.fireErrorCaught(error)
        }
    }

    /// The relay's exchange is over (its response ended, or it handed the request over): go on with what waited.
    private func exchangeEnded() {
        exchange &+= 1
        head = nil
        if case .receiving = inbound {
            inbound = .discarding
            discarded = 0
        } else {
            inbound = .idle
        }
        guard !draining, let context else { return }
        draining = true
        defer { draining = false }
        var delivered = false
        while !held.isEmpty {
            if case .responding = inbound { break }
            let part = held.removeFirst()
            if case .body(let bytes) = part { heldBytes -= bytes.readableBytes }
            deliver(part, context: context)
            delivered = true
        }
        if delivered { context.fireChannelReadComplete() }
        // Reading goes on as soon as what waits is under the limit, even while a request taken from it is answered.
        if readRequested, !readingPaused {
            readRequested = false
            context.read()
        }
        guard held.isEmpty else { return }
        switch inbound {
        case .receiving, .responding:
            return
        case .idle, .forwarding, .discarding:
            if let error = heldError {
                heldError = nil
                context.fireErrorCaught(error)
            }
        }
        forwardInputClosedIfDone(context)
        closeIfQuiesced(context)
    }

    private func forwardInputClosedIfDone(_ context: ChannelHandlerContext) {
        guard inputClosed, held.isEmpty else { return }
        // A request still being read cannot be finished any more: only a response under way is waited for.
        if case .responding = inbound { return }
        inputClosed = false
        context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .responding(let stream) = inbound { stream.writable() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        clientGone()
        context.fireChannelInactive()
    }

    private func clientGone() {
        held.removeAll()
        heldBytes = 0
        switch inbound {
        case .receiving(let stream), .responding(let stream):
            inbound = .idle
            exchange &+= 1
            stream.closed(ChannelError.eof)
        case .idle, .forwarding, .discarding:
            break
        }
    }

    /// Graceful shutdown: the connection closes as soon as no request is in flight (Hummingbird's connection-state
    /// handler behind would not know about the requests taken here, so the event stops here).
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent {
            inputClosed = true
            forwardInputClosedIfDone(context)
            return
        }
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        closeWhenIdle = true
        closeIfQuiesced(context)
    }

    // MARK: - The connection's clock

    /// Nothing in flight: no request being read or answered, here or in Hummingbird.
    private var isIdle: Bool {
        guard forwarded == 0, held.isEmpty, direct?.phase ?? .idle == .idle else { return false }
        if case .idle = inbound { return true }
        return false
    }

    private func closeIfQuiesced(_ context: ChannelHandlerContext) {
        if closeWhenIdle, isIdle { context.close(promise: nil) }
    }

    /// One timer for the connection, moved on only when it fires: it closes a connection that has been idle (or
    /// stalled in the middle of sending a request body) for `idleTimeout`.
    private func armIdleTimer(context: ChannelHandlerContext, in delay: TimeAmount) {
        guard idleTimer == nil else { return }
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            idleTimer = nil
            let waiting: Bool
            switch (inbound, direct?.phase ?? .idle) {
            case (_, .responding), (.responding, _): waiting = false
            case (_, .reading): waiting = true  // reading a request: it must keep coming
            case (.idle, .idle): waiting = forwarded == 0 && held.isEmpty
            case (.forwarding, .idle), (.receiving, .idle), (.discarding, .idle): waiting = true
            }
            let quiet = NIODeadline.coarseNow - lastActivity
            if waiting, quiet >= idleTimeout {
                context.close(promise: nil)
            } else {
                armIdleTimer(context: context, in: waiting ? idleTimeout - quiet : idleTimeout)
            }
        }
    }

    // MARK: - The direct path's requests (HTTP1DirectPath)

    func touch() {
        lastActivity = .coarseNow
    }

    func directExchangeEnded() {
        if let context { closeIfQuiesced(context) }
    }

    /// The direct path gives a request back: the next head NIO's decoder reads is that one.
    func expectHandover(_ id: String) {
        pendingHandover = id
    }

    // MARK: - Outbound

    /// Hummingbird closes after a response it gave before its request's end (a 413 to a `Connection: close`
    /// request, say): the rest of the body is read and dropped first, as closing on unread bytes makes the kernel
    /// reset the connection, and the client could lose the answer. The idle timeout still ends a body that stalls.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode != .input, case .forwarding = inbound, forwarded == 0, context.channel.isActive else {
            context.close(mode: mode, promise: promise)
            return
        }
        if let earlier = deferredClose?.promise, let promise { earlier.futureResult.cascade(to: promise) }
        deferredClose = (mode, deferredClose?.promise ?? promise)
        inbound = .discarding
        discarded = 0
        // Hummingbird, done with the connection, no longer asks for reads: the body is read here.
        context.read()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if deferredClose != nil { context.read() }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if !readingPaused {
            context.read()
        } else {
            readRequested = true
        }
    }

    /// Hummingbird's responses: one ended is one request less outstanding there.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        forwarded = max(0, forwarded - 1)
        lastActivity = .coarseNow
        context.write(data, promise: promise)
        if closeWhenIdle, isIdle {
            context.flush()
            context.close(promise: nil)
            return
        }
        handBackIfAnswered()
    }

    /// Hummingbird has answered every request it was given, each read to its end: a request the direct path handed
    /// over is done with, and the bytes after it are the direct path's to read again.
    private func handBackIfAnswered() {
        guard forwarded == 0, held.isEmpty, pendingHandover == nil, case .idle = inbound, let direct else { return }
        direct.handedOverRequestAnswered()
    }

    // MARK: - The relay's side (HTTP1RelayConnection)

    func respond(
        _ exchange: Int, _ block: borrowing FieldBlock, adding added: AddedResponseFields?, endStream: Bool
    ) throws {
        guard exchange == self.exchange, let context else { throw ChannelError.ioOnClosedChannel }
        var status = HTTPResponseStatus.ok
        var headers = HTTPHeaders()
        var fields = block.fields
        added?.add(to: &fields)
        headers.reserveCapacity(fields.count)
        for field in fields {
            if field.name == ":status" {
                guard let code = Int(field.value) else { throw ChannelError.inappropriateOperationForState }
                status = HTTPResponseStatus(statusCode: code)
            } else {
                headers.add(name: field.name, value: field.value)
            }
        }
        if closeAfterExchange { headers.replaceOrAdd(name: "connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if endStream {
            end(context)
        } else {
            context.flush()
        }
    }

    func write(_ exchange: Int, _ bytes: ByteBuffer, endStream: Bool) -> Bool {
        guard exchange == self.exchange, let context else { return false }
        if bytes.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil) }
        if endStream {
            end(context)
            return true
        }
        context.flush()
        return context.channel.isWritable
    }

    private func end(_ context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        headTimer?.responseEnded()
        lastActivity = .coarseNow
        if closeAfterExchange {
            // Nothing after this request is read or answered (RFC 9112 §9.6); TLS sends its close_notify first.
            exchange &+= 1
            held.removeAll()
            heldBytes = 0
            if case .receiving = inbound {
                // Answered before its body was read (413): the body is read to its end first, as closing on unread
                // bytes makes the kernel reset the connection, and the client could lose the answer.
                inbound = .discarding
                discarded = 0
                closeWhenDiscarded = true
                return
            }
            inbound = .idle
            context.close(promise: nil)
            return
        }
        exchangeEnded()
    }

    func abort(_ exchange: Int) {
        guard exchange == self.exchange, let context else { return }
        self.exchange &+= 1
        context.close(promise: nil)
    }

    func handOver(_ exchange: Int, body: ByteBuffer, continuation: ProxyRelay.RelayContinuation) -> Bool {
        guard exchange == self.exchange, let context, context.channel.isActive, var request = head, let handovers
        else { return false }
        request.headers.replaceOrAdd(name: RelayHandovers.fieldName, value: handovers.deposit(continuation))
        // The head timer heard of this request already; it hears of it again from Hummingbird's side.
        headTimer?.responseEnded()
        forwarded += 1
        context.fireChannelRead(wrapInboundOut(.head(request)))
        if body.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(.body(body))) }
        context.fireChannelRead(wrapInboundOut(.end(nil)))
        context.fireChannelReadComplete()
        exchangeEnded()
        return true
    }
}

@available(*, unavailable)
extension HTTP1FastPath: Sendable {}
