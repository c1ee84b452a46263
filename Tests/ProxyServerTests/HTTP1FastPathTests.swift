import Foundation
import ProxyServer
import ProxyTesting
import Testing

/// The relay's fast path for HTTP/1.1 clients (`HTTP1FastPath`): requests on one keep-alive connection, some taken
/// over on the event loop and some answered by Hummingbird (or handed to the async relay), come back whole and in
/// order; pipelined requests wait their turn.
@Suite struct HTTP1FastPathTests {
    static func post(_ body: String, headers: [String] = []) -> String {
        var request = "POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nx-api-key: \(RelayTests.adminKey)\r\n"
        for header in headers { request += header + "\r\n" }
        return request + "content-type: application/json\r\ncontent-length: \(body.utf8.count)\r\n\r\n" + body
    }

    static let health = "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"

    /// Upstream connections on both event loops, so requests can take the fast path.
    static func warm(_ rig: RelayTests.Rig) async throws {
        for _ in 0..<6 {
            _ = try await rig.curl(["--http1.1", "-H", "x-api-key: \(RelayTests.adminKey)", "-d", "{}", rig.url])
        }
    }

    static func connect(_ rig: RelayTests.Rig) async throws -> TestTLSClient {
        try await blocking { try TestTLSClient(port: rig.port, context: rig.proxyCertificates.clientContext()) }
    }

    static func fastLines(_ log: String) -> Int {
        log.split(separator: "\n").filter { $0.contains("relay=fast") && $0.contains("path=/v1/messages") }.count
    }

    @Test func pipelinedRequestsAcrossBothPathsAreAnsweredInOrder() async throws {
        let rig = try await RelayTests.rig()
        try await Self.warm(rig)
        let client = try await Self.connect(rig)
        // All in one write: JSON (fast path), /health (Hummingbird), SSE, JSON, /health, SSE.
        let requests = [
            Self.post(#"{"model":"m"}"#), Self.health, Self.post(#"{"stream":true}"#), Self.post("{}"), Self.health,
            Self.post(#"{"stream":true}"#),
        ]
        let responses = try await blocking {
            try client.write(Array(requests.joined().utf8))
            return try (0..<requests.count).map { _ in try client.readResponse() }
        }
        for index in [0, 3] {
            #expect(responses[index].status == 200)
            #expect(responses[index].bodyText.contains("Hello from the mock."), "\(responses[index].bodyText)")
            #expect(responses[index].header("x-claude-proxy-account")?.hasPrefix("acc_") == true)
        }
        for index in [1, 4] {
            #expect(responses[index].status == 200)
            #expect(responses[index].bodyText.contains(#""status""#), "\(responses[index].bodyText)")
        }
        for index in [2, 5] {
            #expect(responses[index].bodyText == MockClaudeAPI.sseEvents.joined(), "byte for byte, in order")
        }
        // Not pipelined any more: one at a time on the same connection, each on the fast path.
        for _ in 0..<3 {
            let response = try await blocking {
                try client.write(Array(Self.post(#"{"stream":true}"#).utf8))
                return try client.readResponse()
            }
            #expect(response.bodyText == MockClaudeAPI.sseEvents.joined())
        }
        let log = rig.proxy.log
        try await rig.stop()
        #expect(Self.fastLines(log) >= 4, "the first pipelined request and the three after it take the fast path")
    }

    /// One of two accounts is rate limited: the fast path hands its request to the async relay (the next account
    /// answers), and the connection goes on serving requests afterwards.
    @Test func handedOverRequestsKeepTheConnectionGoing() async throws {
        let limited = RelayTests.token("limited")
        let working = RelayTests.token("working")
        let rig = try await RelayTests.rig(
            accepted: [limited: "status-429", working: ""], imported: [limited, working])
        try await Self.warm(rig)
        let client = try await Self.connect(rig)
        var accounts: Set<String> = []
        for index in 0..<6 {
            let response = try await blocking {
                try client.write(Array(Self.post(index.isMultiple(of: 2) ? "{}" : #"{"stream":true}"#).utf8))
                return try client.readResponse()
            }
            #expect(response.status == 200, "\(response.bodyText)")
            accounts.insert(response.header("x-claude-proxy-account") ?? "")
        }
        let log = rig.proxy.log
        try await rig.stop()
        #expect(accounts.count == 1, "every answer came from the working account: \(accounts)")
        #expect(Self.fastLines(log) >= 1)
        #expect(log.contains("status=429"), "the rate-limited account was tried and answered 429")
    }

    /// A body over `limits.max_request_body`: 413 at once, the rest of the body is read and dropped, and the
    /// connection serves the next request.
    @Test func tooLargeBodyIsRefusedAndTheConnectionGoesOn() async throws {
        let rig = try await RelayTests.rig(environment: ["LIMITS__MAX_REQUEST_BODY": "2048"])
        try await Self.warm(rig)
        let client = try await Self.connect(rig)
        let large = #"{"padding":""# + String(repeating: "x", count: 64 << 10) + #""}"#
        let (refused, next) = try await blocking {
            try client.write(Array((Self.post(large) + Self.post("{}")).utf8))
            return (try client.readResponse(), try client.readResponse())
        }
        try await rig.stop()
        #expect(refused.status == 413)
        #expect(refused.bodyText.contains(#""type":"request_too_large""#), "\(refused.bodyText)")
        #expect(next.status == 200)
        #expect(next.bodyText.contains("Hello from the mock."))
    }

    /// `Connection: close` on a `/v1` request: the response says so and the proxy closes the connection.
    @Test func connectionCloseEndsTheConnectionAfterTheResponse() async throws {
        let rig = try await RelayTests.rig()
        try await Self.warm(rig)
        let client = try await Self.connect(rig)
        let (response, rest) = try await blocking {
            try client.write(Array(Self.post("{}", headers: ["Connection: close"]).utf8))
            let response = try client.readResponse()
            return (response, try client.socket.receiveUntilClosed())
        }
        try await rig.stop()
        #expect(response.status == 200)
        #expect(response.header("connection")?.lowercased() == "close")
        #expect(rest.count < 64, "nothing but a TLS close_notify follows: \(rest.count) bytes")
    }
}
