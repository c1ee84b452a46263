import CNGHTTP2
import Logging
import NIOCore

/// The server side of an HTTP/2 connection as a NIO handler: plaintext bytes in and out (it sits behind
/// `TLSHandler`), an `H2Session` inside, and each new request stream handed to async code through `streams`.
///
/// Floods close the connection with GOAWAY ENHANCE_YOUR_CALM: nghttp2 itself detects PING/SETTINGS floods
/// (`NGHTTP2_ERR_FLOODED`) and endless CONTINUATION runs (`NGHTTP2_ERR_TOO_MANY_CONTINUATIONS`, CVE-2024-27316); streams reset by the client are counted here
/// with a token bucket (rapid reset, CVE-2023-44487; the same burst and rate nghttp2 1.57 later adopted).
public final class H2ServerHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = Never
    public typealias OutboundOut = ByteBuffer

    public struct Configuration: Sendable {
        public var session = H2Session.Settings()
        /// Body bytes queued per stream before `writeBody` waits.
        public var streamWriteHighWatermark = 256 << 10
        /// Rapid-reset bucket: this many client resets at once, refilled at `resetRefillPerSecond`.
        public var resetBurst = 1000
        public var resetRefillPerSecond = 33
        /// A connection with no open stream for this long is closed with GOAWAY NO_ERROR.
        public var idleTimeout: TimeAmount = .seconds(60)
        /// Where protocol violations and floods are reported (one line per connection closed for them).
        public var logger: Logger?
        /// Offered every new request stream first (the relay's fast path).
        public var interceptor: (any H2StreamInterceptor)?
        /// After this many streams the connection says GOAWAY (graceful: open streams finish) so that clients
        /// reconnect — spreading long-lived clients over instances behind a load balancer. 0: no limit.
        public var maxStreamsPerConnection = 0

        public init() {}
    }

    private final class StreamState: H2StreamFlow {
        let body: AsyncThrowingStream<ByteBuffer, any Error>.Continuation?
        /// The response is complete: request body bytes that still arrive are consumed and dropped.
        var discardInbound = false
        /// Set for an intercepted stream: it gets the events instead of `body`.
        var delegate: (any H2InterceptedStreamDelegate)?
        /// The delegate was told to wait: it hears `writable()` once the queue drains to half the high-water mark.
        var wantsWritable = false

        init(body: AsyncThrowingStream<ByteBuffer, any Error>.Continuation?) {
            self.body = body
        }

        /// Ready to be used for another intercepted stream (`recycle`).
        func reset() {
            discardInbound = false
            wantsWritable = false
            unconsumed = 0
        }
    }

    /// Closed intercepted streams' states, kept for the next ones instead of freed (`recycle`).
    private var spareStates: [StreamState] = []
    static let spareStatesLimit = 32

    private let session: H2Session
    private let configuration: Configuration
    private let newStreams: AsyncStream<H2ServerStream>.Continuation
    private var streams = H2StreamTable<StreamState>()
    private var context: ChannelHandlerContext?
    private var resetTokens: Double
    private var lastRefill = NIODeadline.now()
    private var goingAway = false
    private var streamsOpened = 0
    /// A flush is queued for the end of this event-loop turn: responses finished in the same turn leave in one
    /// socket write.
    private var flushScheduled = false
    /// Closes a connection without streams after `idleTimeout` (also one that never sends a request).
    private var idleTimer: Scheduled<Void>?
    /// When the connection last ran out of streams; nil while streams are open. The timer is not cancelled when a
    /// stream opens, nor made anew each time the streams run out (a busy connection does so every few requests):
    /// when it fires it looks at this and waits out the rest if the connection has not been idle long enough.
    private var idleSince: NIODeadline?

    /// Creates the handler and the sequence of request streams that `handle` iterates.
    public static func make(configuration: Configuration = Configuration()) throws(H2Error) -> (
        H2ServerHandler, AsyncStream<H2ServerStream>
    ) {
        let (streams, continuation) = AsyncStream.makeStream(of: H2ServerStream.self)
        let handler = try H2ServerHandler(configuration: configuration, newStreams: continuation)
        return (handler, streams)
    }

    private init(configuration: Configuration, newStreams: AsyncStream<H2ServerStream>.Continuation) throws(H2Error) {
        self.session = try H2Session(role: .server, settings: configuration.session)
        self.configuration = configuration
        self.newStreams = newStreams
        self.resetTokens = Double(configuration.resetBurst)
    }

    /// The channel's allocator, read once: `context.channel` costs a retain and a release per use.
    private var allocator = ByteBufferAllocator()
    /// The channel's loop, from when the handler is added (before any stream) on.
    private(set) var eventLoop: (any EventLoop)?

    public func handlerAdded(context: ChannelHandlerContext) {
        allocator = context.channel.allocator
        eventLoop = context.eventLoop
        self.context = context
        flushOutput()  // our SETTINGS
        armIdleTimer()
    }

    /// The connection has no streams (now, or from the start): it closes after `idleTimeout` unless one opens.
    private func armIdleTimer() {
        idleSince = .now()
        guard idleTimer == nil else { return }
        scheduleIdleCheck(in: configuration.idleTimeout)
    }

    private func scheduleIdleCheck(in delay: TimeAmount) {
        guard let context else { return }
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            idleTimer = nil
            guard streams.isEmpty, let idleSince else { return }
            let remaining = idleSince + configuration.idleTimeout - .now()
            if remaining > .zero {
                scheduleIdleCheck(in: remaining)
                return
            }
            session.goAway(errorCode: H2ErrorCode.noError)
            closeAfterFlush()
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        let error = session.receive(bytes)
        handle(session.takeEvents(), context: context)
        if let error {
            configuration.logger?.info(
                "HTTP/2 connection closed for a protocol error",
                metadata: ["error": "\(error)", "peer": "\(context.remoteAddress?.description ?? "?")"])
            // nghttp2 queued a GOAWAY for protocol errors; floods get ENHANCE_YOUR_CALM from us.
            if error.code == NGHTTP2_ERR_FLOODED.rawValue || error.code == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS.rawValue {
                session.goAway(errorCode: H2ErrorCode.enhanceYourCalm)
            }
            closeAfterFlush()
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        flushOutput()
        context.fireChannelReadComplete()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        idleTimer = nil
        let closed = H2StreamClosedError(streamID: 0, errorCode: H2ErrorCode.cancel)
        let ending = streams
        streams.removeAll()
        for (_, stream) in ending {
            stream.body?.finish(throwing: closed)
            stream.writeWaiter?.fail(closed)
            if let delegate = stream.delegate {
                stream.delegate = nil
                delegate.closed(closed)
            }
        }
        newStreams.finish()
        context.fireChannelInactive()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Graceful shutdown: finish what is open, accept nothing new (RFC 9113 §6.8).
            goAway()
            return
        }
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The client sent its last byte (TCP FIN, or TLS close_notify). An HTTP/2 connection has no half-closed
            // state: no new stream can come, so finish those in flight and close, as on a graceful shutdown.
            // Without this the connection stayed open until the idle timeout, counted against the connection limit.
            goAway()
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func goAway() {
        guard !goingAway else { return closeIfIdle() }
        goingAway = true
        session.goAway(errorCode: H2ErrorCode.noError)
        flushOutput()
        closeIfIdle()
    }

    // MARK: - Events from the session

    private func handle(_ taken: consuming [H2Event], context: ChannelHandlerContext) {
        var events = taken
        events.forEachMoved { event in
            switch consume event {
            case .headers(let id, let fields, let endStream):
                if let stream = streams[id] {
                    // Trailers: nothing to forward here, but they may end the body.
                    if endStream {
                        stream.body?.finish()
                        stream.delegate?.requestEnded()
                    }
                } else {
                    open(id, fields: fields, endStream: endStream, context: context)
                }
            case .data(let id, let bytes):
                if let stream = streams[id], let body = stream.body, !stream.discardInbound {
                    stream.unconsumed += bytes.readableBytes
                    body.yield(bytes)
                } else if let stream = streams[id], let delegate = stream.delegate, !stream.discardInbound {
                    stream.unconsumed += bytes.readableBytes
                    delegate.received(bytes)
                } else {
                    session.consume(streamID: id, bytes.readableBytes)
                }
            case .endStream(let id):
                streams[id]?.body?.finish()
                streams[id]?.delegate?.requestEnded()
            case .reset(let id, let code):
                end(id, error: H2StreamClosedError(streamID: id, errorCode: code))
                if !takeResetToken() {
                    configuration.logger?.info(
                        "HTTP/2 connection closed: too many stream resets (rapid reset)",
                        metadata: ["peer": "\(context.remoteAddress?.description ?? "?")"])
                    session.goAway(errorCode: H2ErrorCode.enhanceYourCalm, debugData: "too many stream resets")
                    closeAfterFlush()
                }
            case .streamClosed(let id, let code):
                end(id, error: code == H2ErrorCode.noError ? nil : H2StreamClosedError(streamID: id, errorCode: code))
                if goingAway { closeIfIdle() }
            case .goAway, .settings, .pingAcknowledged:
                break
            }
        }
        session.recycle(events)
    }

    private func open(_ id: Int32, fields: FieldBlock, endStream: Bool, context: ChannelHandlerContext) {
        idleSince = nil
        streamsOpened += 1
        if configuration.maxStreamsPerConnection > 0, streamsOpened == configuration.maxStreamsPerConnection {
            // This stream is the last one served here (the GOAWAY's last-stream-id is this one).
            goingAway = true
            session.goAway(errorCode: H2ErrorCode.noError)
            scheduleFlush()
        }
        if let interceptor = configuration.interceptor {
            let intercepted = H2InterceptedStream(handler: self, id: id)
            let state = spareStates.popLast() ?? StreamState(body: nil)
            streams[id] = state
            if let delegate = interceptor.intercept(intercepted, fields: fields, endStream: endStream) {
                state.delegate = delegate
                if endStream { delegate.requestEnded() }
                return
            }
            streams[id] = nil
        }
        let connection = NIOLoopBound(self, eventLoop: context.eventLoop)
        let inbound: H2InboundBody
        if endStream {
            streams[id] = StreamState(body: nil)
            inbound = H2InboundBody(stream: nil) { _ in }
        } else {
            let (body, continuation) = AsyncThrowingStream.makeStream(of: ByteBuffer.self, throwing: (any Error).self)
            streams[id] = StreamState(body: continuation)
            inbound = H2InboundBody(stream: body) { count in
                if connection.eventLoop.inEventLoop {
                    connection.value.consumed(streamID: id, count)
                } else {
                    connection.eventLoop.execute { connection.value.consumed(streamID: id, count) }
                }
            }
        }
        newStreams.yield(H2ServerStream(id: id, fields: fields.fields, body: inbound, connection: connection))
    }

    private func end(_ id: Int32, error: (any Error)?) {
        guard var stream = streams.removeValue(forKey: id) else { return }
        if stream.unconsumed > 0 { session.consume(streamID: id, stream.unconsumed) }
        if streams.isEmpty { armIdleTimer() }
        if let error {
            stream.body?.finish(throwing: error)
            stream.writeWaiter?.fail(error)
        } else {
            stream.body?.finish()
            stream.writeWaiter?.succeed(())
        }
        if let delegate = stream.delegate {
            stream.delegate = nil
            delegate.closed(error)
            recycle(&stream)
        }
    }

    /// An intercepted stream's state, kept for the next one instead of freed: only when nothing else refers to it
    /// any more (so no late call can reach the stream that reuses it) and it is done with.
    private func recycle(_ state: inout StreamState) {
        guard spareStates.count < Self.spareStatesLimit, state.body == nil, state.delegate == nil,
            state.writeWaiter == nil, isKnownUniquelyReferenced(&state)
        else { return }
        state.reset()
        spareStates.append(state)
    }

    private func takeResetToken() -> Bool {
        let now = NIODeadline.now()
        let elapsed = Double((now - lastRefill).nanoseconds) / 1e9
        lastRefill = now
        resetTokens = min(
            Double(configuration.resetBurst), resetTokens + elapsed * Double(configuration.resetRefillPerSecond))
        guard resetTokens >= 1 else { return false }
        resetTokens -= 1
        return true
    }

    // MARK: - Calls from H2ServerStream (on the event loop)

    func sendHead(streamID: Int32, _ fields: [H2Field], endStream: Bool, promise: EventLoopPromise<Void>) {
        guard streams[streamID] != nil else {
            promise.fail(H2StreamClosedError(streamID: streamID, errorCode: H2ErrorCode.cancel))
            return
        }
        do {
            try session.submitResponse(streamID: streamID, fields, endStream: endStream)
            if endStream, let stream = streams[streamID] { responseComplete(stream, streamID: streamID) }
            scheduleFlush()
            promise.succeed(())
        } catch {
            promise.fail(error)
        }
    }

    func sendBody(streamID: Int32, _ bytes: ByteBuffer, endStream: Bool, promise: EventLoopPromise<Void>) {
        guard let stream = streams[streamID] else {
            promise.fail(H2StreamClosedError(streamID: streamID, errorCode: H2ErrorCode.cancel))
            return
        }
        session.sendBody(streamID: streamID, bytes, endStream: endStream)
        if endStream { responseComplete(stream, streamID: streamID) }
        scheduleFlush()
        stream.admitWrite(
            promise, queued: session.bufferedBodyBytes(streamID: streamID),
            highWatermark: configuration.streamWriteHighWatermark)
    }

    // MARK: - Calls from an intercepted stream's delegate (on the event loop)

    func interceptedHead(_ id: Int32, endStream: Bool, head: (inout H2HeadWriter) -> Void) throws {
        guard let stream = streams[id] else { throw H2StreamClosedError(streamID: id, errorCode: H2ErrorCode.cancel) }
        try session.submitResponse(streamID: id, endStream: endStream, head: head)
        if endStream { responseComplete(stream, streamID: id) }
        scheduleFlush()
    }

    func interceptedBody(_ id: Int32, _ bytes: ByteBuffer, endStream: Bool) -> Bool {
        guard let stream = streams[id], let context else { return true }
        session.sendBody(streamID: id, bytes, endStream: endStream)
        if endStream { responseComplete(stream, streamID: id) }
        scheduleFlush()
        guard context.channel.isActive,
            session.bufferedBodyBytes(streamID: id) > configuration.streamWriteHighWatermark
        else { return true }
        stream.wantsWritable = true
        return false
    }

    /// Tells the delegates that were told to wait and whose queue drained that they may go on.
    private func releaseInterceptedWriters() {
        var ready: [any H2InterceptedStreamDelegate] = []
        for (id, stream) in streams where stream.wantsWritable {
            guard session.bufferedBodyBytes(streamID: id) <= configuration.streamWriteHighWatermark / 2 else {
                continue
            }
            stream.wantsWritable = false
            if let delegate = stream.delegate { ready.append(delegate) }
        }
        for delegate in ready { delegate.writable() }
    }

    /// False when the stream is gone already (the delegate then ends the request itself).
    func handOver(_ id: Int32, fields: [H2Field], body: ByteBuffer, handover: (any Sendable)?) -> Bool {
        guard let stream = streams[id], let context else { return false }
        stream.delegate = nil
        let connection = NIOLoopBound(self, eventLoop: context.eventLoop)
        var inbound = H2InboundBody(stream: nil) { _ in }
        if body.readableBytes > 0 {
            // Already consumed by the delegate: the responder reads it without giving window back twice.
            let (sequence, continuation) = AsyncThrowingStream.makeStream(
                of: ByteBuffer.self, throwing: (any Error).self)
            continuation.yield(body)
            continuation.finish()
            inbound = H2InboundBody(stream: sequence) { _ in }
        }
        newStreams.yield(
            H2ServerStream(id: id, fields: fields, body: inbound, connection: connection, handover: handover))
        return true
    }

    func consumed(streamID: Int32, _ count: Int) {
        // A stream that ended already gave its unconsumed bytes back (`end`), and so did one whose response went
        // out whole (`responseComplete`) while its reader still had chunks queued; counting them twice would
        // over-credit the connection window.
        guard let stream = streams[streamID], !stream.discardInbound else { return }
        session.consumed(count, of: stream, id: streamID)
        scheduleFlush()
    }

    /// The response went out whole: an unread request body (a 401 before the upload was read) must not keep the
    /// connection window, so what was handed over is given back and what still comes is dropped.
    private func responseComplete(_ stream: StreamState, streamID: Int32) {
        stream.discardInbound = true
        if stream.unconsumed > 0 {
            session.consume(streamID: streamID, stream.unconsumed)
            stream.unconsumed = 0
        }
    }

    private func scheduleFlush() {
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute { [self] in
            flushScheduled = false
            flushOutput()
        }
    }

    func reset(streamID: Int32, errorCode: UInt32) {
        // A delegate that resets its own stream has ended the request already: it hears no `closed`.
        streams[streamID]?.delegate = nil
        session.resetStream(streamID, errorCode: errorCode)
        end(streamID, error: H2StreamClosedError(streamID: streamID, errorCode: errorCode))
        flushOutput()
    }

    // MARK: - Output

    /// Output is taken from nghttp2 only while the socket keeps up: otherwise frames (PING/SETTINGS ACKs from a
    /// flooding peer, bodies for a slow reader) stay queued inside nghttp2 and our stream buffers, where floods
    /// are detected and writers wait — instead of piling up in NIO's write buffer.
    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flushOutput() }
        context.fireChannelWritabilityChanged()
    }

    private func flushOutput() {
        guard let context, context.channel.isWritable else { return }
        var output = allocator.buffer(capacity: 0)
        if session.takeOutput(into: &output) != nil {
            closeAfterFlush()
        }
        if output.readableBytes > 0 {
            context.writeAndFlush(wrapOutboundOut(output), promise: nil)
        }
        // Sending can close streams (our END_STREAM after the peer's, an RST): nghttp2 reports that now.
        handle(session.takeEvents(), context: context)
        session.releaseWriters(of: streams, highWatermark: configuration.streamWriteHighWatermark)
        releaseInterceptedWriters()
    }

    private func closeIfIdle() {
        if streams.isEmpty { closeAfterFlush() }
    }

    private func closeAfterFlush() {
        guard let context else { return }
        var output = allocator.buffer(capacity: 0)
        _ = session.takeOutput(into: &output)
        context.writeAndFlush(wrapOutboundOut(output)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension H2ServerHandler: Sendable {}
