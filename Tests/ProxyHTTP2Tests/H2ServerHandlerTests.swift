import NIOCore
import NIOEmbedded
import Testing

@testable import ProxyHTTP2

/// Streams taken over by an interceptor on the event loop (the relay's fast path).
@Suite struct H2ServerHandlerTests {
    /// Answers each stream with its path and the request body it read.
    final class Echo: H2InterceptedStreamDelegate {
        let stream: H2InterceptedStream
        let path: String
        var body = ""

        init(_ stream: H2InterceptedStream, path: String) {
            self.stream = stream
            self.path = path
        }

        func received(_ bytes: ByteBuffer) {
            body += String(buffer: bytes)
            stream.consumed(bytes.readableBytes)
        }

        func requestEnded() {
            try? stream.respond(FieldBlock([H2Field(":status", "200")]), endStream: false)
            stream.write(ByteBuffer(string: "\(path) \(body)"), endStream: true)
        }

        func writable() {}
        func closed(_ error: (any Error)?) {}
    }

    struct EchoInterceptor: H2StreamInterceptor {
        func intercept(_ stream: H2InterceptedStream, fields: FieldBlock, endStream: Bool)
            -> (any H2InterceptedStreamDelegate)?
        {
            Echo(stream, path: fields.value(named: ":path") ?? "?")
        }
    }

    /// Intercepted streams one after another on a connection (whose per-stream state is kept and used again once a
    /// stream ends) each get their own request body and answer.
    @Test func interceptedStreamsOneAfterAnotherReadTheirOwnBodies() throws {
        var configuration = H2ServerHandler.Configuration()
        configuration.interceptor = EchoInterceptor()
        let (handler, _) = try H2ServerHandler.make(configuration: configuration)
        let channel = EmbeddedChannel(handler: handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        let client = try H2Session(role: .client)
        var responses: [Int32: String] = [:]
        func pump() throws {
            for _ in 0..<20 {
                channel.embeddedEventLoop.run()  // the handler's flushes are scheduled on its loop
                let request = client.takeOutput()
                try channel.writeInbound(ByteBuffer(bytes: request))
                channel.embeddedEventLoop.run()
                var sent = ByteBuffer()
                while var chunk = try channel.readOutbound(as: ByteBuffer.self) { sent.writeBuffer(&chunk) }
                let bytes = Array(sent.readableBytesView)
                #expect(bytes.withUnsafeBytes { client.receive($0) } == nil)
                for event in client.takeEvents() {
                    if case .data(let id, let data) = event {
                        responses[id, default: ""] += String(buffer: data)
                        client.consume(streamID: id, data.readableBytes)
                    }
                }
                if request.isEmpty && bytes.isEmpty { return }
            }
        }
        try pump()
        var ids: [Int32] = []
        for round in 0..<3 {
            let id = try client.submitRequest(
                [
                    H2Field(":method", "POST"), H2Field(":scheme", "https"), H2Field(":authority", "example"),
                    H2Field(":path", "/\(round)"),
                ], endStream: false)
            client.sendBody(streamID: id, ByteBuffer(string: "body \(round)"), endStream: true)
            try pump()
            ids.append(id)
        }
        #expect(ids.map { responses[$0] } == ["/0 body 0", "/1 body 1", "/2 body 2"])
    }
}
