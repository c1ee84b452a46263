import NIOCore

/// Takes request streams over on the connection's event loop, before any task is made for them: the relay's
/// fast path. Returning nil leaves the stream to the async responder as usual.
public protocol H2StreamInterceptor: Sendable {
    func intercept(_ stream: H2InterceptedStream, fields: FieldBlock, endStream: Bool)
        -> (any H2InterceptedStreamDelegate)?
}

/// What an intercepted stream tells its delegate, on the event loop. `closed` comes last, once.
public protocol H2InterceptedStreamDelegate: AnyObject {
    /// Request body bytes; give them back with `H2InterceptedStream.consumed(_:)`.
    func received(_ bytes: ByteBuffer)
    func requestEnded()
    /// The response queue drained after `write` said to wait.
    func writable()
    /// The stream is gone: `nil` after a complete exchange, else why (client reset, connection closed).
    func closed(_ error: (any Error)?)
}

/// An intercepted stream as its delegate drives it. Only used on the connection's event loop (it holds the
/// handler, which is not Sendable).
public struct H2InterceptedStream {
    let handler: H2ServerHandler
    public let id: Int32

    /// The connection's loop. Not stored: two words fit in an existential's inline buffer, so a relay holding this
    /// as `any` protocol value does not box it on the heap for every stream.
    public var eventLoop: any EventLoop { handler.eventLoop! }

    /// Submits the response head.
    public func respond(_ fields: borrowing FieldBlock, endStream: Bool) throws {
        try respond(endStream: endStream) { head in head.add(fields) }
    }

    /// Submits the response head written by `head` straight into the session's head space.
    public func respond(endStream: Bool, head: (inout H2HeadWriter) -> Void) throws {
        try handler.interceptedHead(id, endStream: endStream, head: head)
    }

    /// Queues response body bytes; false when the stream's queue is above its high-water mark: stop passing
    /// bytes on until `writable()`.
    @discardableResult
    public func write(_ bytes: ByteBuffer, endStream: Bool) -> Bool {
        handler.interceptedBody(id, bytes, endStream: endStream)
    }

    public func consumed(_ count: Int) {
        handler.consumed(streamID: id, count)
    }

    /// RST_STREAM; the delegate hears no `closed` for it.
    public func reset(errorCode: UInt32) {
        handler.reset(streamID: id, errorCode: errorCode)
    }

    /// Gives the stream to the async responder after all, with the request body the delegate read (already
    /// consumed) and whatever the responder should know (`H2ServerStream.handover`); the delegate hears nothing
    /// more. Only before a response head was sent.
    /// False when the stream is gone already (the client left): nobody will answer it.
    @discardableResult
    public func handOver(fields: [H2Field], body: ByteBuffer, handover: (any Sendable)? = nil) -> Bool {
        handler.handOver(id, fields: fields, body: body, handover: handover)
    }
}
