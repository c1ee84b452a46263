import NIOCore

/// One request stream of an inbound HTTP/2 connection, handed to async code: its header fields, its body as
/// an async sequence, and the calls that answer it. Every call hops to the connection's event loop.
public final class H2ServerStream: Sendable {
    public let id: Int32
    public let fields: [H2Field]
    public let body: H2InboundBody
    /// What an interceptor that handed the stream over left for the responder (see `H2InterceptedStream`).
    public let handover: (any Sendable)?
    let connection: NIOLoopBound<H2ServerHandler>

    init(
        id: Int32, fields: [H2Field], body: H2InboundBody, connection: NIOLoopBound<H2ServerHandler>,
        handover: (any Sendable)? = nil
    ) {
        self.id = id
        self.fields = fields
        self.body = body
        self.connection = connection
        self.handover = handover
    }

    var eventLoop: any EventLoop { connection.eventLoop }

    /// Sends the response head; with `endStream` there is no body.
    public func writeHead(_ fields: [H2Field], endStream: Bool) async throws {
        try await perform { handler, promise in
            handler.sendHead(streamID: self.id, fields, endStream: endStream, promise: promise)
        }
    }

    /// Sends the head and the first body bytes in one trip to the event loop (with `endStream`, the whole
    /// response: the common case of a body whose length is known).
    public func writeHead(_ fields: [H2Field], body: ByteBuffer, endStream: Bool) async throws {
        let eventLoop = eventLoop
        try await perform { handler, promise in
            let head = eventLoop.makePromise(of: Void.self)
            handler.sendHead(streamID: self.id, fields, endStream: false, promise: head)
            // sendHead completes its promise at once: the body follows only a head that was accepted.
            head.futureResult.assumeIsolated().whenComplete { result in
                switch result {
                case .success: handler.sendBody(streamID: self.id, body, endStream: endStream, promise: promise)
                case .failure(let error): promise.fail(error)
                }
            }
        }
    }

    /// Queues body bytes; returns once the stream's queue is below its high-water mark (the peer reads).
    public func writeBody(_ buffer: ByteBuffer) async throws {
        try await perform { handler, promise in
            handler.sendBody(streamID: self.id, buffer, endStream: false, promise: promise)
        }
    }

    /// Ends the response body.
    public func finish() async throws {
        try await perform { handler, promise in
            handler.sendBody(streamID: self.id, ByteBuffer(), endStream: true, promise: promise)
        }
    }

    /// Abandons the stream (RST_STREAM), e.g. when the handler failed after the head was sent.
    public func reset(errorCode: UInt32 = H2ErrorCode.internalError) {
        let connection = connection
        let id = id
        connection.eventLoop.execute { connection.value.reset(streamID: id, errorCode: errorCode) }
    }

    /// Runs `body` on the loop and waits for its promise. A cancelled task (server shutdown, client gone)
    /// resets the stream, which fails a writer waiting for window — an `EventLoopFuture` alone would wait forever.
    private func perform(_ body: @escaping @Sendable (H2ServerHandler, EventLoopPromise<Void>) -> Void) async throws {
        let promise = eventLoop.makePromise(of: Void.self)
        let connection = connection
        let id = id
        try await withTaskCancellationHandler {
            // The handler task usually runs on this very loop (EventLoopTaskExecutor): then no hop at all.
            if eventLoop.inEventLoop {
                body(connection.value, promise)
            } else {
                eventLoop.execute { body(connection.value, promise) }
            }
            try await promise.futureResult.get()
        } onCancel: {
            connection.eventLoop.execute { connection.value.reset(streamID: id, errorCode: H2ErrorCode.cancel) }
        }
    }
}

/// A request body arriving over HTTP/2. Bytes count against the stream's receive window until the iterator
/// hands them out; then the window reopens — so the peer can never have more in flight than one window.
public struct H2InboundBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    /// Nil for a request that ended with its HEADERS: no stream is made for a body that cannot come.
    let stream: AsyncThrowingStream<ByteBuffer, any Error>?
    let consumed: @Sendable (Int) -> Void

    /// Whether body bytes may follow (the request did not end with its HEADERS).
    public var mayHaveBytes: Bool { stream != nil }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<ByteBuffer, any Error>.AsyncIterator?
        let consumed: @Sendable (Int) -> Void

        public mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await base?.next() else { return nil }
            consumed(chunk.readableBytes)
            return chunk
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream?.makeAsyncIterator(), consumed: consumed)
    }
}

/// The stream was reset or the connection closed before the operation could complete.
public struct H2StreamClosedError: Error, Sendable, Equatable {
    public var streamID: Int32
    public var errorCode: UInt32
}
