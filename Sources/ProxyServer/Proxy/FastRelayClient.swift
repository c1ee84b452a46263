import NIOCore
import ProxyHTTP2

/// The client's side of a fast-path exchange as `FastRelayStream` drives it: an intercepted HTTP/2 stream, or an
/// HTTP/1.1 request taken over on its connection (`HTTP1FastPath`). Only used on the connection's event loop.
protocol FastRelayClient {
    var eventLoop: any EventLoop { get }
    /// Sends the response head (`:status` and lower-case fields).
    func respond(_ fields: [H2Field], endStream: Bool) throws
    /// Queues response body bytes; false when the client's queue is full: hold back until `writable()`.
    @discardableResult
    func write(_ bytes: ByteBuffer, endStream: Bool) -> Bool
    /// Request body bytes the relay has taken.
    func consumed(_ count: Int)
    /// Ends the exchange abruptly after a response head was sent: the client sees the response broken off.
    func abort()
    /// Gives the request to the async relay after all, with its body and where the fast path left off. Only
    /// before a response head was sent. False when the client is gone already.
    @discardableResult
    func handOver(fields: [H2Field], body: ByteBuffer, handover: ProxyRelay.RelayContinuation) -> Bool
}

extension H2InterceptedStream: FastRelayClient {
    func abort() {
        reset(errorCode: H2ErrorCode.internalError)
    }

    func handOver(fields: [H2Field], body: ByteBuffer, handover: ProxyRelay.RelayContinuation) -> Bool {
        handOver(fields: fields, body: body, handover: handover as (any Sendable)?)
    }
}
