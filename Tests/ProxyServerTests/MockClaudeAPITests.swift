import Foundation
import NIOCore
import NIOPosix
import ProxyHTTP2
import ProxyServer
import ProxyTLS
import ProxyTesting
import ProxyUpstream
import Testing

/// The mock Claude API that the relay tests will stand on, exercised through the upstream pool over HTTP/2.
@Suite struct MockClaudeAPITests {
    static let token = "mock-access-token-for-tests"

    func withMock(_ body: (UpstreamPool, Int) async throws -> Void) async throws {
        try await TestServer.withUpstreamPool(routes: MockClaudeAPI.routes(token: Self.token), body)
    }

    static func messages(port: Int, token: String = token, fault: String? = nil) -> [H2Field] {
        var fields = [
            H2Field(":method", "POST"), H2Field(":scheme", "https"), H2Field(":authority", "localhost:\(port)"),
            H2Field(":path", "/v1/messages"), H2Field("authorization", "Bearer \(token)"),
            H2Field("content-type", "application/json"),
        ]
        if let fault { fields.append(H2Field("x-mock-fault", fault)) }
        return fields
    }

    static func text(_ exchange: UpstreamPool.Exchange) async throws -> String {
        var bytes: [UInt8] = []
        for try await chunk in exchange.stream.body { bytes += chunk.readableBytesView }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func jsonAndStreamingMessages() async throws {
        try await withMock { pool, port in
            let json = try await pool.send(
                Self.messages(port: port), body: ByteBuffer(string: #"{"model":"m","max_tokens":5}"#),
                responseHeadTimeout: .seconds(30))
            #expect(json.status == 200)
            #expect(try await Self.text(json).contains(#""output_tokens":6"#))
            let sse = try await pool.send(
                Self.messages(port: port), body: ByteBuffer(string: #"{"stream":true}"#),
                responseHeadTimeout: .seconds(30))
            #expect(sse.head[field: "content-type"] == "text/event-stream")
            let events = try await Self.text(sse)
            #expect(
                events.hasPrefix("event: message_start\n")
                    && events.hasSuffix("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"))
            #expect(events == MockClaudeAPI.sseEvents.joined(), "relayed byte for byte")
        }
    }

    @Test func wrongTokenGetsAnAnthropicAuthenticationError() async throws {
        try await withMock { pool, port in
            let exchange = try await pool.send(
                Self.messages(port: port, token: "wrong"), body: ByteBuffer(string: "{}"),
                responseHeadTimeout: .seconds(30))
            #expect(exchange.status == 401)
            #expect(try await Self.text(exchange).contains(#""type":"authentication_error""#))
        }
    }

    @Test(arguments: [
        ("status-429", 429, "rate_limit_error"), ("status-529", 529, "overloaded_error"),
        ("status-500", 500, "api_error"),
    ])
    func errorFaults(fault: String, status: Int, type: String) async throws {
        try await withMock { pool, port in
            let exchange = try await pool.send(
                Self.messages(port: port, fault: fault), body: ByteBuffer(string: "{}"),
                responseHeadTimeout: .seconds(30))
            #expect(exchange.status == status)
            #expect(try await Self.text(exchange).contains(#""type":"\#(type)""#))
            if status == 429 { #expect(exchange.head[field: "retry-after"] == "7") }
        }
    }

    @Test func streamBrokenMidBodyFailsTheReader() async throws {
        try await withMock { pool, port in
            let exchange = try await pool.send(
                Self.messages(port: port, fault: "rst-mid-body"), body: ByteBuffer(string: #"{"stream":true}"#),
                responseHeadTimeout: .seconds(30))
            #expect(exchange.status == 200)
            await #expect(throws: H2StreamClosedError.self) { _ = try await Self.text(exchange) }
        }
    }

    @Test func slowDripArrivesEventByEvent() async throws {
        try await withMock { pool, port in
            let exchange = try await pool.send(
                Self.messages(port: port, fault: "slow-drip"), body: ByteBuffer(string: #"{"stream":true}"#),
                responseHeadTimeout: .seconds(30))
            var chunks = 0
            var bytes: [UInt8] = []
            for try await chunk in exchange.stream.body {
                chunks += 1
                bytes += chunk.readableBytesView
            }
            #expect(
                chunks == MockClaudeAPI.sseEvents.count,
                "each event is its own DATA frame, forwarded without waiting for the next")
            #expect(String(decoding: bytes, as: UTF8.self) == MockClaudeAPI.sseEvents.joined())
        }
    }
}
