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

/// An HTTP/1.1 connection's handler that gives requests to the relay (`HTTP1DirectPath`, `HTTP1FastPath`): the
/// calls of one exchange, which it ignores once that exchange is over.
protocol HTTP1RelayConnection: AnyObject {
    /// The connection's loop (set when the handler is added, before any exchange).
    var eventLoop: any EventLoop { get }
    func respond(_ exchange: Int, _ fields: [H2Field], endStream: Bool) throws
    func write(_ exchange: Int, _ bytes: ByteBuffer, endStream: Bool) -> Bool
    func abort(_ exchange: Int)
    func handOver(_ exchange: Int, body: ByteBuffer, continuation: ProxyRelay.RelayContinuation) -> Bool
}

/// The client's side of an HTTP/1.1 request the relay took over: calls go to the connection's handler, tagged
/// with the exchange.
struct HTTP1RelayExchange<Connection: HTTP1RelayConnection>: FastRelayClient {
    /// Strong: the handler holds the relay's stream only while its exchange is current, which ends the cycle.
    let connection: Connection
    let exchange: Int

    /// Not stored: two words fit in an existential's inline buffer, so the relay holding this as `any
    /// FastRelayClient` does not box it on the heap for every request.
    var eventLoop: any EventLoop { connection.eventLoop }

    func respond(_ fields: [H2Field], endStream: Bool) throws {
        try connection.respond(exchange, fields, endStream: endStream)
    }

    func write(_ bytes: ByteBuffer, endStream: Bool) -> Bool {
        connection.write(exchange, bytes, endStream: endStream)
    }

    /// HTTP/1.1 has no window to give back: reading is the connection's.
    func consumed(_ count: Int) {}

    func abort() {
        connection.abort(exchange)
    }

    func handOver(fields: [H2Field], body: ByteBuffer, handover: ProxyRelay.RelayContinuation) -> Bool {
        connection.handOver(exchange, body: body, continuation: handover)
    }
}
