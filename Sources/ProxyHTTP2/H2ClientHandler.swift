import NIOCore

/// The client side of an HTTP/2 connection as a NIO handler (behind a client `TLSHandler`): streams are opened
/// from async code through `H2ClientStream`, responses come back as a head promise plus a body sequence whose
/// reading opens the stream's receive window (backpressure all the way to the server).
public final class H2ClientHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = Never
    public typealias OutboundOut = ByteBuffer

    /// What the pool needs to hear about the connection.
    public enum ConnectionEvent: Sendable {
        /// The server's SETTINGS (first and later ones): its stream limit.
        case settings(maxConcurrentStreams: Int)
        /// GOAWAY: no new streams; streams above `lastStreamID` were not processed and were failed as refused.
        case goAway(lastStreamID: Int32)
        /// A stream ended (in any way): its slot is free.
        case streamClosed
        /// The connection is gone; why, as far as known (TLS failure, protocol error, peer closed).
        case closed(reason: String)
    }

    public struct Configuration: Sendable {
        public var session = H2Session.Settings()
        public var streamWriteHighWatermark = 256 << 10
        /// A PING not acknowledged within this closes the connection: the peer (or the path to it) is dead, and
        /// its streams fail now instead of waiting for TCP to notice.
        public var pingTimeout: TimeAmount = .seconds(20)

        public init() {}
    }

    /// A stream's reader: async code (a head promise and a body sequence) or, on the event loop itself, a
    /// delegate (the relay's fast path).
    final class StreamState: H2StreamFlow {
        var head: EventLoopPromise<[H2Field]>?
        let body: AsyncThrowingStream<ByteBuffer, any Error>.Continuation?
        var delegate: (any H2ClientStreamDelegate)?

        init(head: EventLoopPromise<[H2Field]>, body: AsyncThrowingStream<ByteBuffer, any Error>.Continuation) {
            self.head = head
            self.body = body
        }

        init(delegate: any H2ClientStreamDelegate) {
            self.body = nil
            self.delegate = delegate
        }

        /// Ready to be used for another delegate stream (`recycle`).
        func reset() {
            headSeen = false
            unconsumed = 0
        }

        func receivedHead(_ fields: consuming FieldBlock) {
            if let head {
                self.head = nil
                head.succeed(fields.fields)
            } else if let delegate, !headSeen {
                headSeen = true
                delegate.responseHead(fields)
            }
        }
        private var headSeen = false

        func received(_ bytes: ByteBuffer) {
            if let body { body.yield(bytes) } else { delegate?.responseData(bytes) }
        }

        /// The last bytes of the body, with its end.
        func receivedLast(_ bytes: ByteBuffer) {
            if let body {
                body.yield(bytes)
                body.finish()
            } else if let delegate {
                self.delegate = nil
                delegate.responseEnded(lastData: bytes)
            }
        }

        func ended() {
            if let body {
                body.finish()
            } else if let delegate {
                self.delegate = nil
                delegate.responseEnded()
            }
        }

        func fail(_ error: any Error) {
            head?.fail(error)
            head = nil
            body?.finish(throwing: error)
            writeWaiter?.fail(error)
            writeWaiter = nil
            if let delegate {
                self.delegate = nil
                delegate.streamFailed(error)
            }
        }
    }

    private let session: H2Session
    private let configuration: Configuration
    private let onEvent: @Sendable (ConnectionEvent) -> Void
    private var streams = H2StreamTable<StreamState>()
    private var context: ChannelHandlerContext?
    private var isClosed = false
    /// Frames from several streams opened, written or consumed in one event-loop tick go out in one write.
    private var flushScheduled = false
    /// The first error seen on the connection, reported with `.closed`.
    private var failure: String?
    /// Armed by `ping()`, cancelled by the acknowledgement.
    private var pingDeadline: Scheduled<Void>?

    public init(configuration: Configuration = Configuration(), onEvent: @escaping @Sendable (ConnectionEvent) -> Void)
        throws(H2Error)
    {
        self.session = try H2Session(role: .client, settings: configuration.session)
        self.configuration = configuration
        self.onEvent = onEvent
    }

    /// The channel's allocator, read once: `context.channel` costs a retain and a release per use.
    private var allocator = ByteBufferAllocator()

    public func handlerAdded(context: ChannelHandlerContext) {
        allocator = context.channel.allocator
        self.context = context
        if context.channel.isActive { flushOutput() }
    }

    public func channelActive(context: ChannelHandlerContext) {
        flushOutput()  // connection preface + SETTINGS
        context.fireChannelActive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        let error = session.receive(bytes)
        handle(session.takeEvents())
        if let error {
            failure = failure ?? "\(error)"
            context.close(promise: nil)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        flushOutput()
        context.fireChannelReadComplete()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        pingDeadline?.cancel()
        pingDeadline = nil
        let closed = H2StreamClosedError(streamID: 0, errorCode: H2ErrorCode.cancel)
        for (_, stream) in streams { stream.fail(closed) }
        streams.removeAll()
        onEvent(.closed(reason: failure ?? "connection closed"))
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // TLS verification failures and socket errors end here: keep the first as the connection's reason.
        failure = failure ?? "\(error)"
        context.close(promise: nil)
    }

    private func handle(_ taken: consuming [H2Event]) {
        var events = taken
        // The stream whose `.endStream`, next, went with its last DATA bytes already.
        var endedWithData: Int32?
        events.forEachMoved { event, nextEnds in
            switch consume event {
            case .headers(let id, let fields, let endStream):
                guard let stream = streams[id] else { return }
                // 1xx responses are interim (RFC 9110 §15.2); the final head follows.
                let interim = fields.withFields { head in
                    head.first(":status").map { head.value($0).first == UInt8(ascii: "1") } ?? false
                }
                if interim { return }
                stream.receivedHead(fields)
                if endStream { stream.ended() }
            case .data(let id, let bytes):
                if let stream = streams[id] {
                    stream.unconsumed += bytes.readableBytes
                    if nextEnds == id {
                        endedWithData = id
                        stream.receivedLast(bytes)
                    } else {
                        stream.received(bytes)
                    }
                } else {
                    session.consume(streamID: id, bytes.readableBytes)
                }
            case .endStream(let id):
                if endedWithData == id {
                    endedWithData = nil
                    return
                }
                streams[id]?.ended()
            case .reset(let id, let code):
                remove(id)?.fail(H2StreamClosedError(streamID: id, errorCode: code))
            case .streamClosed(let id, let code):
                if var stream = remove(id) {
                    if code == H2ErrorCode.noError {
                        stream.head?.fail(H2StreamClosedError(streamID: id, errorCode: code))
                        stream.head = nil
                        stream.writeWaiter?.succeed(())
                        stream.writeWaiter = nil
                        stream.body?.finish()
                        // A delegate still listening never saw the end of a response. (Asked first: an error is
                        // boxed on the heap, and most streams end with their delegate gone.)
                        if stream.delegate != nil { stream.fail(H2StreamClosedError(streamID: id, errorCode: code)) }
                    } else {
                        stream.fail(H2StreamClosedError(streamID: id, errorCode: code))
                    }
                    recycle(&stream)
                }
                onEvent(.streamClosed)
            case .goAway(let lastStreamID, _, _):
                for (id, _) in streams where id > lastStreamID {
                    remove(id)?.fail(H2StreamClosedError(streamID: id, errorCode: H2ErrorCode.refusedStream))
                }
                onEvent(.goAway(lastStreamID: lastStreamID))
            case .settings(let maxConcurrentStreams, _):
                onEvent(.settings(maxConcurrentStreams: Int(maxConcurrentStreams)))
            case .pingAcknowledged:
                pingDeadline?.cancel()
                pingDeadline = nil
            }
        }
        session.recycle(events)
    }

    /// A closed delegate stream's state, kept for the next stream this handler opens instead of freed: only when
    /// nothing else refers to it any more (so no late call can reach the stream that reuses it) and it is done with.
    private func recycle(_ state: inout StreamState) {
        guard spareStates.count < Self.spareStatesLimit, state.body == nil, state.head == nil, state.delegate == nil,
            state.writeWaiter == nil, isKnownUniquelyReferenced(&state)
        else { return }
        state.reset()
        spareStates.append(state)
    }

    private var spareStates: [StreamState] = []
    static let spareStatesLimit = 32

    /// Forgets a stream, giving the bytes its reader never consumed back to the connection window.
    private func remove(_ id: Int32) -> StreamState? {
        guard let stream = streams.removeValue(forKey: id) else { return nil }
        if stream.unconsumed > 0 { session.consume(streamID: id, stream.unconsumed) }
        return stream
    }

    // MARK: - Calls from H2ClientStream (on the event loop)

    func open(
        _ fields: [H2Field], endStream: Bool, head: EventLoopPromise<[H2Field]>,
        body: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
    ) throws -> Int32 {
        guard !isClosed else { throw H2StreamClosedError(streamID: 0, errorCode: H2ErrorCode.cancel) }
        let id = try session.submitRequest(fields, endStream: endStream)
        streams[id] = StreamState(head: head, body: body)
        scheduleFlush()
        return id
    }

    /// Opens a request stream read by `delegate` on this event loop (no tasks, no promises); `head` writes the
    /// request head straight into the session (`H2Session.submitRequest(endStream:head:)`). The request body, if
    /// any, follows with `send(streamID:_:endStream:)`.
    public func open(
        endStream: Bool, delegate: any H2ClientStreamDelegate, head: (inout H2HeadWriter) -> Void
    ) throws -> Int32 {
        guard !isClosed else { throw H2StreamClosedError(streamID: 0, errorCode: H2ErrorCode.cancel) }
        let id = try session.submitRequest(endStream: endStream, head: head)
        if let spare = spareStates.popLast() {
            spare.delegate = delegate
            streams[id] = spare
        } else {
            streams[id] = StreamState(delegate: delegate)
        }
        scheduleFlush()
        return id
    }

    /// Queues request body bytes (the relay's bodies are in memory already: no backpressure needed here).
    public func send(streamID: Int32, _ bytes: ByteBuffer, endStream: Bool) {
        guard streams[streamID] != nil else { return }
        session.sendBody(streamID: streamID, bytes, endStream: endStream)
        scheduleFlush()
    }

    /// The delegate passed `count` response bytes on: the stream's window may open again.
    public func consume(streamID: Int32, _ count: Int) {
        consumed(streamID: streamID, count)
    }

    /// RST_STREAM CANCEL from the delegate's side; the delegate hears nothing more.
    public func cancelStream(_ streamID: Int32) {
        streams[streamID]?.delegate = nil
        cancel(streamID: streamID)
    }

    func sendBody(streamID: Int32, _ bytes: ByteBuffer, endStream: Bool, promise: EventLoopPromise<Void>) {
        guard let stream = streams[streamID] else {
            promise.fail(H2StreamClosedError(streamID: streamID, errorCode: H2ErrorCode.cancel))
            return
        }
        session.sendBody(streamID: streamID, bytes, endStream: endStream)
        scheduleFlush()
        stream.admitWrite(
            promise, queued: session.bufferedBodyBytes(streamID: streamID),
            highWatermark: configuration.streamWriteHighWatermark)
    }

    func consumed(streamID: Int32, _ count: Int) {
        // Bytes of a stream already removed were given back by `remove`.
        guard let stream = streams[streamID] else { return }
        session.consumed(count, of: stream, id: streamID)
        scheduleFlush()
    }

    private func scheduleFlush() {
        guard !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute { [self] in
            flushScheduled = false
            flushOutput()
        }
    }

    func cancel(streamID: Int32) {
        guard let stream = remove(streamID) else { return }
        session.resetStream(streamID, errorCode: H2ErrorCode.cancel)
        stream.fail(H2StreamClosedError(streamID: streamID, errorCode: H2ErrorCode.cancel))
        flushOutput()
    }

    /// Sends a PING; without its ACK within `pingTimeout` the connection is closed (one PING outstanding at most).
    public func ping() {
        guard pingDeadline == nil, let context, !isClosed else { return }
        session.ping()
        pingDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: configuration.pingTimeout) { [self] in
            pingDeadline = nil
            failure = failure ?? "no PING acknowledgement within \(configuration.pingTimeout)"
            self.context?.close(promise: nil)
        }
        flushOutput()
    }

    /// Whether the server has said GOAWAY (the pool stops sending new streams here).
    public var isGoingAway: Bool { session.peerWentAway }

    /// Frames are taken from nghttp2 only while the socket keeps up (see `H2ServerHandler`).
    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { flushOutput() }
        context.fireChannelWritabilityChanged()
    }

    private func flushOutput() {
        guard let context, context.channel.isActive, context.channel.isWritable else { return }
        var output = allocator.buffer(capacity: 0)
        if session.takeOutput(into: &output) != nil { context.close(promise: nil) }
        if output.readableBytes > 0 { context.writeAndFlush(wrapOutboundOut(output), promise: nil) }
        // Sending can close streams (our RST after a cancel, END_STREAM after the server's): seen now, not at
        // the next inbound frame, so the pool gets the slot back at once.
        handle(session.takeEvents())
        session.releaseWriters(of: streams, highWatermark: configuration.streamWriteHighWatermark)
    }
}

@available(*, unavailable)
extension H2ClientHandler: Sendable {}

/// Reads one upstream response on the connection's event loop (see `H2ClientHandler.open(endStream:delegate:head:)`).
/// Exactly one of `responseEnded` and `streamFailed` ends the conversation.
public protocol H2ClientStreamDelegate: AnyObject {
    /// The head's fields as bytes, read where they lie (`FieldBlock`).
    func responseHead(_ fields: consuming FieldBlock)
    /// Give the bytes back with `consume(streamID:_:)` once passed on: until then they hold the window.
    func responseData(_ bytes: ByteBuffer)
    func responseEnded()
    /// The body's last bytes and its end at once (a DATA frame with END_STREAM): one write where there would be two.
    /// The bytes need not be given back; the stream's end does that.
    func responseEnded(lastData bytes: ByteBuffer)
    func streamFailed(_ error: any Error)
}

extension H2ClientStreamDelegate {
    public func responseEnded(lastData bytes: ByteBuffer) {
        responseData(bytes)
        responseEnded()
    }
}

/// One request stream on an upstream HTTP/2 connection, used from async code; every call hops to the loop.
public final class H2ClientStream: Sendable {
    public let id: Int32
    /// The response head (`:status` and fields); fails if the stream is reset or the connection dies first.
    public let head: EventLoopFuture<[H2Field]>
    public let body: H2InboundBody
    let connection: NIOLoopBound<H2ClientHandler>

    /// Opens a stream with a request head; send a body with `writeBody`/`finish` unless `endStream`.
    public static func open(
        on connection: NIOLoopBound<H2ClientHandler>, _ fields: [H2Field], endStream: Bool
    ) async throws -> H2ClientStream {
        let eventLoop = connection.eventLoop
        let head = eventLoop.makePromise(of: [H2Field].self)
        let (body, continuation) = AsyncThrowingStream.makeStream(of: ByteBuffer.self, throwing: (any Error).self)
        let opened = eventLoop.makePromise(of: Int32.self)
        let open: @Sendable () -> Void = {
            opened.completeWith(
                Result { try connection.value.open(fields, endStream: endStream, head: head, body: continuation) })
        }
        if eventLoop.inEventLoop { open() } else { eventLoop.execute(open) }
        let id: Int32
        do {
            id = try await opened.futureResult.get()
        } catch {
            head.fail(error)
            continuation.finish(throwing: error)
            throw error
        }
        let inbound = H2InboundBody(stream: body) { count in
            if eventLoop.inEventLoop {
                connection.value.consumed(streamID: id, count)
            } else {
                eventLoop.execute { connection.value.consumed(streamID: id, count) }
            }
        }
        return H2ClientStream(id: id, head: head.futureResult, body: inbound, connection: connection)
    }

    private init(
        id: Int32, head: EventLoopFuture<[H2Field]>, body: H2InboundBody, connection: NIOLoopBound<H2ClientHandler>
    ) {
        self.id = id
        self.head = head
        self.body = body
        self.connection = connection
    }

    public func writeBody(_ buffer: ByteBuffer) async throws {
        try await send(buffer, endStream: false)
    }

    public func finish() async throws {
        try await send(ByteBuffer(), endStream: true)
    }

    /// RST_STREAM CANCEL: the caller (the proxied client) went away.
    public func cancel() {
        let connection = connection
        let id = id
        connection.eventLoop.execute { connection.value.cancel(streamID: id) }
    }

    private func send(_ buffer: ByteBuffer, endStream: Bool) async throws {
        let promise = connection.eventLoop.makePromise(of: Void.self)
        let connection = connection
        let id = id
        // Cancellation (the proxied client went away) resets the stream and so fails a waiting writer. A caller
        // already on the connection's loop (the usual case, see UpstreamPools) needs no hop.
        try await withTaskCancellationHandler {
            if connection.eventLoop.inEventLoop {
                connection.value.sendBody(streamID: id, buffer, endStream: endStream, promise: promise)
            } else {
                connection.eventLoop.execute {
                    connection.value.sendBody(streamID: id, buffer, endStream: endStream, promise: promise)
                }
            }
            try await promise.futureResult.get()
        } onCancel: {
            connection.eventLoop.execute { connection.value.cancel(streamID: id) }
        }
    }
}
