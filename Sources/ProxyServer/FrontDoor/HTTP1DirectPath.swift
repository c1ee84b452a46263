import NIOCore
import ProxyHTTP2
import ProxyTLS

/// The relay's fast path for HTTP/1.1 read straight from the bytes: in front of NIO's HTTP/1.1 codec, a plain `/v1`
/// request (`HTTP1DirectHead`) is read here, given to the relay (`FastRelay`), and its response written here as
/// bytes (`HTTP1ResponseWriter`): no llhttp, no HTTP part enums or header dictionaries, no trip through the
/// handlers behind.
///
/// A connection starts here and stays here while its requests are plain ones the relay takes. One the relay hands
/// over (a 429, a 401, no account or no upstream connection yet) goes to NIO's decoder alone, as it came, and the
/// bytes after it wait here until Hummingbird has answered it; then they are read here again. The first request
/// that is not plain (another path, an unusual head) or that the relay declines goes to NIO's decoder with every
/// byte after it, and from then on the connection is NIO's and Hummingbird's (where `HTTP1FastPath` still takes
/// `/v1` requests from the parsed parts). NIO's codec thus only ever sees whole requests from their first byte,
/// and its encoder, which learns each request's method from the decoder, only answers the requests its decoder
/// read.
///
/// The connection's clock (idle timeout, graceful shutdown) stays with `HTTP1FastPath`, which hears from here.
final class HTTP1DirectPath: ChannelDuplexHandler, RemovableChannelHandler, HTTP1RelayConnection,
    TLSPlaintextReceiver
{
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        /// Between requests: the next head is read from `buffer`.
        case awaitingHead
        /// The relay's request: `remaining` bytes of its body are still to come.
        case receiving(FastRelayStream, remaining: Int)
        /// Its request read whole, its response under way: later bytes wait in `buffer`.
        case responding(FastRelayStream)
        /// Answered before its body was read (413): the rest of the body is read and dropped.
        case discarding(remaining: Int)
        /// Its request (read whole) went to NIO's decoder for Hummingbird to answer: later bytes wait in `buffer`
        /// until `HTTP1FastPath` has seen that answer end (`handedOverRequestAnswered`).
        case handedOver
        /// The connection is NIO's codec's from here on.
        case passingThrough
    }

    /// What the connection's clock needs to know.
    enum Phase {
        case idle, reading, responding
    }

    private let relay: FastRelay
    private let handovers: RelayHandovers
    private let limits: HTTP1DirectHead.Limits
    private var state = State.awaitingHead
    /// Bytes read and not used yet.
    private var buffer = ByteBuffer()
    /// The current request's head as it came, for a hand-over.
    private var headBytes: ByteBuffer?
    /// Where the connection's request heads' fields are laid out.
    private var fieldBuilder = FieldBlockBuilder(chunkSize: 2048)
    /// Which exchange is current: a finished one's calls are ignored.
    private var exchange = 0
    private var framing = HTTP1ResponseWriter.Framing.none
    private var closeAfterExchange = false
    private var closeWhenDiscarded = false
    private var processing = false
    private var readRequested = false
    private var forwardedSinceReadComplete = false
    /// The client ended its side (TLS close_notify) while a request of ours was under way: Hummingbird, which ends
    /// the connection when it hears of it, hears of it once that request is answered.
    private var inputClosed = false
    private var clock: HTTP1FastPath?
    private var headTimer: RequestHeadTimer?
    private var context: ChannelHandlerContext?
    /// The TLS handler in front, linked at the first read (`TLSPlaintextReceiver`): plaintext, writes, flushes and
    /// reads pass between the two by direct calls. Not at `handlerAdded`: `ALPNWaiter` stands between them until
    /// it has replayed what came with the handshake, which must come first.
    private var tls: TLSHandler?
    private var linkTried = false

    init(relay: FastRelay, limits: HTTP1DirectHead.Limits) {
        self.relay = relay
        self.handovers = relay.shared.relay.handovers
        self.limits = limits
    }

    var phase: Phase {
        switch state {
        // The first bytes of a next head are not a request in flight (as in NIO's decoder): the request-head
        // timer watches them.
        case .passingThrough, .awaitingHead, .handedOver: return .idle
        case .receiving, .discarding: return .reading
        case .responding: return .responding
        }
    }

    /// The channel's allocator, read once: `context.channel` costs a retain and a release per use.
    private var allocator = ByteBufferAllocator()
    /// The last response head's buffer: TLS has encrypted it and let go of it by the next response, so it is filled
    /// again in place instead of allocated (`clear()` makes a new one if it is still held).
    private var spareHead: ByteBuffer?

    /// The channel's loop, from when the handler is added (before any exchange) on.
    private var loop: (any EventLoop)?
    var eventLoop: any EventLoop { loop! }

    static var front: StaticString { "http1-direct" }

    func handlerAdded(context: ChannelHandlerContext) {
        loop = context.eventLoop
        allocator = context.channel.allocator
        self.context = context
        headTimer = try? context.pipeline.syncOperations.handler(type: RequestHeadTimer.self)
        clock = try? context.pipeline.syncOperations.handler(type: HTTP1FastPath.self)
        clock?.direct = self
    }

    /// Also how a closed connection is heard of: the pipeline's handlers are removed when the channel closes.
    func handlerRemoved(context: ChannelHandlerContext) {
        tls?.unlink()
        tls = nil
        clientGone()
        clock?.direct = nil
        clock = nil
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientGone()
        context.fireChannelInactive()
    }

    private func clientGone() {
        buffer = ByteBuffer()
        switch state {
        case .receiving(let stream, _), .responding(let stream):
            state = .awaitingHead
            exchange &+= 1
            stream.closed(ChannelError.eof)
        case .awaitingHead, .discarding, .passingThrough, .handedOver:
            break
        }
    }

    // MARK: - Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !linkTried {
            linkTried = true
            // The front door puts this handler right behind TLS (once `ALPNWaiter` has left, as it does after the
            // replay this read may be part of).
            if let tls = try? context.pipeline.syncOperations.handler(type: TLSHandler.self) {
                tls.link(self)
                self.tls = tls
            }
        }
        arrived(unwrapInboundIn(data), context)
    }

    func plaintextRead(_ plaintext: ByteBuffer) {
        guard let context else { return }
        arrived(plaintext, context)
    }

    func plaintextReadComplete() {
        guard let context else { return }
        channelReadComplete(context: context)
    }

    private func arrived(_ plaintext: ByteBuffer, _ context: ChannelHandlerContext) {
        if case .passingThrough = state {
            forwardedSinceReadComplete = true
            context.fireChannelRead(wrapInboundOut(plaintext))
            return
        }
        clock?.touch()
        headTimer?.bytesArrived()
        var bytes = plaintext
        if buffer.readableBytes == 0 {
            buffer = bytes
        } else {
            // Bytes already used are dropped once they outweigh those still waiting: ByteBuffer keeps them when
            // it grows, and a client that keeps pipelining would have the connection hold all it ever sent.
            if buffer.readerIndex > buffer.readableBytes { buffer.discardReadBytes() }
            buffer.writeBuffer(&bytes)
        }
        process(context)
        forwardInputClosedIfDone(context)
    }

    /// The client's end of input waits for our request in flight to be answered (and for what it sent before it to
    /// be read); Hummingbird ends the connection when it hears of it.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .inputClosed = event as? ChannelEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        inputClosed = true
        forwardInputClosedIfDone(context)
    }

    private func forwardInputClosedIfDone(_ context: ChannelHandlerContext) {
        guard inputClosed else { return }
        switch state {
        case .passingThrough:
            break
        case .handedOver:
            // Hummingbird, which answers the request handed over, hears of the end too, after what waited here.
            state = .passingThrough
            process(context)
            completeForwardedRead(context)
        case .awaitingHead:
            // A head that can no longer be completed is NIO's decoder's to judge.
            if buffer.readableBytes > 0 {
                state = .passingThrough
                process(context)
                completeForwardedRead(context)
            }
        case .responding:
            return
        case .receiving, .discarding:
            break  // a request still being read cannot be finished any more
        }
        inputClosed = false
        context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        completeForwardedRead(context)
        // While the connection is ours the next read is asked for here: with one pending, NIO skips its own
        // (autoRead), which starts at the pipeline's tail and passes every handler behind this one.
        if case .passingThrough = state { return }
        headTimer?.readCompleted()
        read(context: context)
    }

    /// The handlers behind hear of a read's end only when bytes went to them; bytes passed on outside a read (the
    /// rest of a buffer, once a response ended) need one too, or Hummingbird's async channel would sit on them.
    private func completeForwardedRead(_ context: ChannelHandlerContext) {
        guard forwardedSinceReadComplete else { return }
        forwardedSinceReadComplete = false
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .responding(let stream) = state { stream.writable() }
        context.fireChannelWritabilityChanged()
    }

    /// Uses what `buffer` holds as far as the state allows; the relay's calls back into this handler (an answer, a
    /// hand-over) may change the state on the way, and the loop goes on from there.
    private func process(_ context: ChannelHandlerContext) {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        while true {
            switch state {
            case .passingThrough:
                if buffer.readableBytes > 0 {
                    forwardedSinceReadComplete = true
                    context.fireChannelRead(wrapInboundOut(buffer))
                    buffer = ByteBuffer()
                }
                return
            case .responding, .handedOver:
                return
            case .awaitingHead:
                guard buffer.readableBytes > 0 else { return }
                switch HTTP1DirectHead.parse(buffer, limits: limits, builder: &fieldBuilder) {
                case .incomplete:
                    return
                case .unusual:
                    state = .passingThrough
                case .head(let head):
                    take(head, context: context)
                }
                if buffer.readableBytes == 0 { buffer = ByteBuffer() }  // the storage goes with the last byte
            case .receiving(let stream, let remaining):
                if remaining > 0 {
                    guard buffer.readableBytes > 0 else { return }
                    let count = min(remaining, buffer.readableBytes)
                    state = .receiving(stream, remaining: remaining - count)
                    stream.received(buffer.readSlice(length: count)!)
                    if buffer.readableBytes == 0 { buffer = ByteBuffer() }
                }
                // An answer before the body's end (413) has moved the state on.
                if case .receiving(let current, 0) = state, current === stream {
                    state = .responding(stream)
                    stream.requestEnded()
                }
            case .discarding(let remaining):
                if remaining == 0 {
                    guard !closeWhenDiscarded else {
                        buffer = ByteBuffer()
                        context.close(promise: nil)
                        return
                    }
                    state = .awaitingHead
                    clock?.directExchangeEnded()
                    continue
                }
                guard buffer.readableBytes > 0 else { return }
                let count = min(remaining, buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: count)
                if buffer.readableBytes == 0 { buffer = ByteBuffer() }
                state = .discarding(remaining: remaining - count)
            }
        }
    }

    private func take(_ head: HTTP1DirectHead, context: ChannelHandlerContext) {
        exchange &+= 1
        let client = HTTP1RelayExchange(connection: self, exchange: exchange)
        guard
            let stream = relay.intercept(fields: head.fields, client: client)
        else {
            state = .passingThrough
            return
        }
        headTimer?.headReceived()
        headBytes = buffer.readSlice(length: head.length)
        closeAfterExchange = head.close
        state = .receiving(stream, remaining: head.contentLength)
    }

    // MARK: - Outbound

    /// Reading goes on while a response is under way, so a client that leaves is noticed, until `heldLimit` bytes
    /// of later requests wait.
    func read(context: ChannelHandlerContext) {
        switch state {
        case .responding, .handedOver:
            guard buffer.readableBytes < HTTP1FastPath.heldLimit else {
                readRequested = true
                return
            }
        case .awaitingHead, .receiving, .discarding, .passingThrough:
            break
        }
        if let tls { tls.readOnward() } else { context.read() }
    }

    /// Response bytes towards the client: to the linked TLS handler directly, or down the pipeline.
    private func send(_ bytes: ByteBuffer, _ context: ChannelHandlerContext) {
        if let tls { tls.writePlaintext(bytes) } else { context.write(wrapOutboundOut(bytes), promise: nil) }
    }

    private func flushOut(_ context: ChannelHandlerContext) {
        if let tls { tls.flushPlaintext() } else { context.flush() }
    }

    // MARK: - The relay's side (HTTP1RelayConnection)

    func respond(_ exchange: Int, _ fields: borrowing FieldBlock, adding added: AddedResponseFields?, endStream: Bool)
        throws
    {
        guard exchange == self.exchange, let context else { throw ChannelError.ioOnClosedChannel }
        var head = spareHead.take() ?? allocator.buffer(capacity: 512)
        head.clear()
        guard
            let framing = HTTP1ResponseWriter.head(
                fields, adding: added, endStream: endStream, close: closeAfterExchange, into: &head)
        else { throw ChannelError.inappropriateOperationForState }
        self.framing = framing
        send(head, context)
        if head.capacity <= 2048 { spareHead = head }
        if endStream {
            end(context)
        } else {
            flushOut(context)
        }
    }

    func write(_ exchange: Int, _ bytes: ByteBuffer, endStream: Bool) -> Bool {
        guard exchange == self.exchange, let context else { return false }
        if case .length = framing {
            if bytes.readableBytes > 0 { send(bytes, context) }
        } else {
            var framed = allocator.buffer(capacity: bytes.readableBytes + 16)
            HTTP1ResponseWriter.body(bytes, framing: framing, last: endStream, into: &framed)
            if framed.readableBytes > 0 { send(framed, context) }
        }
        if endStream {
            end(context)
            return true
        }
        flushOut(context)
        return context.channel.isWritable
    }

    private func end(_ context: ChannelHandlerContext) {
        flushOut(context)
        headTimer?.responseEnded()
        clock?.touch()
        exchange &+= 1
        headBytes = nil
        let unread: Int
        if case .receiving(_, let remaining) = state { unread = remaining } else { unread = 0 }
        if unread > HTTP1FastPath.discardLimit {
            // Too much left to read just to drop it: the connection ends now.
            state = .awaitingHead
            buffer = ByteBuffer()
            context.close(promise: nil)
            return
        }
        if closeAfterExchange {
            // Nothing after this request is read or answered (RFC 9112 §9.6); TLS sends its close_notify first.
            buffer = ByteBuffer()
            if unread > 0 {
                // Answered before its body was read (413): the body is read to its end first, as closing on unread
                // bytes makes the kernel reset the connection, and the client could lose the answer.
                state = .discarding(remaining: unread)
                closeWhenDiscarded = true
                process(context)
            } else {
                state = .awaitingHead
                context.close(promise: nil)
            }
            return
        }
        state = unread > 0 ? .discarding(remaining: unread) : .awaitingHead
        goOn(context)
    }

    /// An exchange is over: on with what waited.
    private func goOn(_ context: ChannelHandlerContext) {
        process(context)
        completeForwardedRead(context)
        // The first bytes of the next request came with this one's: their head gets the same time as any.
        if case .awaitingHead = state, buffer.readableBytes > 0 { headTimer?.headStarted() }
        forwardInputClosedIfDone(context)
        if readRequested {
            readRequested = false
            read(context: context)
        }
        clock?.directExchangeEnded()
    }

    func abort(_ exchange: Int) {
        guard exchange == self.exchange, let context else { return }
        self.exchange &+= 1
        context.close(promise: nil)
    }

    /// The request goes to NIO's decoder as it came (its head's bytes and the body the relay kept, all of it: the
    /// relay hands over only once the request was read whole); `HTTP1FastPath` gives it to Hummingbird with the
    /// hand-over id. What came after it waits here until Hummingbird's answer has ended.
    func handOver(_ exchange: Int, body: ByteBuffer, continuation: ProxyRelay.RelayContinuation) -> Bool {
        guard exchange == self.exchange, let context, context.channel.isActive, let head = headBytes, let clock
        else { return false }
        clock.expectHandover(handovers.deposit(continuation))
        // The head timer heard of this request already; it hears of it again from Hummingbird's side.
        headTimer?.responseEnded()
        self.exchange &+= 1
        headBytes = nil
        // After a `Connection: close` request nothing is read here again: what follows it is NIO's to drop.
        state = closeAfterExchange ? .passingThrough : .handedOver
        forwardedSinceReadComplete = true
        context.fireChannelRead(wrapInboundOut(head))
        if body.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(body)) }
        process(context)
        completeForwardedRead(context)
        forwardInputClosedIfDone(context)
        if readRequested {
            readRequested = false
            read(context: context)
        }
        return true
    }

    /// Hummingbird has answered the request handed over (and NIO's decoder has read it to its end): the bytes after
    /// it are read here again. Called while that answer's end is being written, so the rest waits for the loop's
    /// next turn.
    func handedOverRequestAnswered() {
        guard case .handedOver = state, let context else { return }
        context.eventLoop.assumeIsolated().execute { [self] in
            guard case .handedOver = state, let context = self.context, context.channel.isActive else { return }
            state = .awaitingHead
            goOn(context)
        }
    }
}

@available(*, unavailable)
extension HTTP1DirectPath: Sendable {}
