import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ProxyHTTP2

/// Serves one inbound HTTP/2 stream through the same router as HTTP/1.1: builds a Hummingbird `Request` from
/// the stream's fields and body, asks the router's responder, and writes the `Response` back through
/// `H2ResponseBodyWriter` — no per-stream channel in between.
struct HTTP2StreamResponder: Sendable {
    let responder: RouterResponder<BasicRequestContext>
    /// Takes the streams the relay's fast path handed over, with where it left off.
    let relay: ProxyRelay?
    let logger: Logger

    /// Connection-specific fields (RFC 9113 §8.2.2) that must not appear in an HTTP/2 message.
    static let connectionSpecific: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
    ]

    func serve(_ stream: H2ServerStream, channel: any Channel) async {
        guard let head = Self.request(from: stream.fields) else {
            stream.reset(errorCode: H2ErrorCode.protocolError)
            return
        }
        let body =
            stream.body.mayHaveBytes ? RequestBody(asyncSequence: stream.body) : RequestBody(buffer: ByteBuffer())
        let request = Request(head: head, body: body)
        var logger = logger
        logger[metadataKey: "hb.request.id"] = .stringConvertible(RequestID())
        let context = BasicRequestContext(source: .init(channel: channel, logger: logger))
        var response: Response
        do {
            if let continuation = stream.handover as? ProxyRelay.RelayContinuation, let relay {
                response = try await relay.relay(request, context: context, continuing: continuation)
                response.headers[RequestLogMiddleware<BasicRequestContext>.requestIDHeader] = context.id
            } else {
                response = try await responder.respond(to: request, context: context)
            }
        } catch {
            logger.debug("unhandled error", metadata: ["error": "\(error)"])
            response = Response(status: .internalServerError)
        }
        do {
            let length = response.body.contentLength
            if length == 0 || head.method == .head {
                try await stream.writeHead(Self.fields(of: response), endStream: true)
            } else if let length {
                // Known length: the head waits for the first bytes and, for a one-piece body, leaves with them.
                try await response.body.write(
                    H2ResponseBodyWriter(stream: stream, pendingHead: Self.fields(of: response), remaining: length))
            } else {
                try await stream.writeHead(Self.fields(of: response), endStream: false)
                try await response.body.write(H2ResponseBodyWriter(stream: stream, pendingHead: nil, remaining: nil))
            }
        } catch {
            logger.debug("HTTP/2 response not completed", metadata: ["error": "\(error)"])
            stream.reset(errorCode: H2ErrorCode.internalError)
        }
    }

    static func request(from fields: [H2Field]) -> HTTPRequest? {
        guard let name = fields[field: ":method"], let method = HTTPRequest.Method(name) else { return nil }
        var head = HTTPRequest(
            method: method,
            scheme: fields[field: ":scheme"],
            authority: fields[field: ":authority"],
            path: fields[field: ":path"]
        )
        // The relay's internal hand-over id is never a client's to send.
        for field in fields where !field.name.hasPrefix(":") && field.name != RelayHandovers.fieldName {
            guard let name = HTTPField.Name(field.name) else { return nil }
            head.headerFields.append(HTTPField(name: name, value: field.value))
        }
        return head
    }

    static func fields(of response: Response) -> [H2Field] {
        var fields = [H2Field(":status", "\(response.status.code)")]
        fields.reserveCapacity(response.headers.count + 2)
        for field in response.headers where !connectionSpecific.contains(field.name.canonicalName) {
            fields.append(H2Field(field.name.canonicalName, field.value))
        }
        if response.headers[.date] == nil { fields.append(H2Field("date", HTTPDate.now())) }
        if response.headers[.contentLength] == nil, let length = response.body.contentLength {
            fields.append(H2Field("content-length", "\(length)"))
        }
        return fields
    }
}

/// Hummingbird's `ResponseBodyWriter` for an HTTP/2 stream: each buffer becomes DATA on the stream, with
/// backpressure from the stream's send window.
struct H2ResponseBodyWriter: ResponseBodyWriter {
    let stream: H2ServerStream
    /// The response head, not sent yet (bodies of known length: sent with the first bytes).
    var pendingHead: [H2Field]?
    /// Bytes still to come when the length is known: the write that reaches 0 carries END_STREAM.
    var remaining: Int?
    var ended = false

    mutating func write(_ buffer: ByteBuffer) async throws {
        guard !ended else { return }
        var last = false
        if let left = remaining {
            remaining = left - buffer.readableBytes
            last = left - buffer.readableBytes <= 0
        }
        if let head = pendingHead {
            pendingHead = nil
            try await stream.writeHead(head, body: buffer, endStream: last)
        } else if last {
            try await stream.writeBody(buffer)
            try await stream.finish()
        } else {
            try await stream.writeBody(buffer)
        }
        ended = last
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        if let head = pendingHead {
            try await stream.writeHead(head, endStream: true)
        } else if !ended {
            try await stream.finish()
        }
    }
}
