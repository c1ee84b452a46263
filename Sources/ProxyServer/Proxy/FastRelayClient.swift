import NIOCore
import ProxyHTTP2

/// The client's side of a fast-path exchange as `FastRelayStream` drives it: an intercepted HTTP/2 stream, or an
/// HTTP/1.1 request taken over on its connection (`HTTP1FastPath`). Only used on the connection's event loop.
protocol FastRelayClient {
    var eventLoop: any EventLoop { get }
    /// Which reader of the client's requests took this one, for the request's log line: `http2`, `http1-direct`
    /// (`HTTP1DirectPath`, from the bytes) or `http1-decoder` (`HTTP1FastPath`, from NIO's decoder's parts).
    var front: StaticString { get }
    /// Sends the response head (`:status` and fields), with `added` written after its fields.
    func respond(_ fields: borrowing FieldBlock, adding added: AddedResponseFields?, endStream: Bool) throws
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
    func handOver(fields: FieldBlock, body: ByteBuffer, handover: ProxyRelay.RelayContinuation) -> Bool
}

/// The fields the relay adds to an upstream's response head, written after the head's own as it goes out: the
/// head's block stays as it came (added to, it would grow, and be copied wherever it is still shared).
struct AddedResponseFields {
    let account: String
    let requestID: FastRequestID
    /// When the upstream sent no `date`.
    let date: String?

    func add(to head: inout some H2FieldSink & ~Copyable) {
        head.add(static: "x-claude-proxy-account", account)
        requestID.withDigits { head.add(name: FieldBytes.bytes("x-request-id"), value: $0) }
        if let date { head.add(static: "date", date) }
    }
}

extension H2InterceptedStream: FastRelayClient {
    var front: StaticString { "http2" }

    func respond(_ fields: borrowing FieldBlock, adding added: AddedResponseFields?, endStream: Bool) throws {
        try respond(endStream: endStream) { head in
            head.add(fields)
            added?.add(to: &head)
        }
    }

    func abort() {
        reset(errorCode: H2ErrorCode.internalError)
    }

    func handOver(fields: FieldBlock, body: ByteBuffer, handover: ProxyRelay.RelayContinuation) -> Bool {
        handOver(fields: fields.fields, body: body, handover: handover as (any Sendable)?)
    }
}

/// An HTTP/1.1 connection's handler that gives requests to the relay (`HTTP1DirectPath`, `HTTP1FastPath`): the
/// calls of one exchange, which it ignores once that exchange is over.
protocol HTTP1RelayConnection: AnyObject {
    /// The connection's loop (set when the handler is added, before any exchange).
    var eventLoop: any EventLoop { get }
    /// `FastRelayClient.front`.
    static var front: StaticString { get }
    func respond(_ exchange: Int, _ fields: borrowing FieldBlock, adding added: AddedResponseFields?, endStream: Bool)
        throws
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
    var front: StaticString { Connection.front }

    func respond(_ fields: borrowing FieldBlock, adding added: AddedResponseFields?, endStream: Bool) throws {
        try connection.respond(exchange, fields, adding: added, endStream: endStream)
    }

    func write(_ bytes: ByteBuffer, endStream: Bool) -> Bool {
        connection.write(exchange, bytes, endStream: endStream)
    }

    /// HTTP/1.1 has no window to give back: reading is the connection's.
    func consumed(_ count: Int) {}

    func abort() {
        connection.abort(exchange)
    }

    func handOver(fields: FieldBlock, body: ByteBuffer, handover: ProxyRelay.RelayContinuation) -> Bool {
        connection.handOver(exchange, body: body, continuation: handover)
    }
}
