import Foundation
import NIOCore
import ProxyCore
import ProxyHTTP2
import ProxyTesting
import ProxyUpstream
import Testing

/// The stateful mock the end-to-end suite runs, over HTTP/2 through the upstream pool: its token life cycle,
/// faults and counters must be right, or the suite proves nothing.
@Suite struct MockClaudeServiceTests {
    struct Answer {
        var status: Int
        var head: [H2Field]
        var text: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:] }
    }

    static func send(
        _ pool: UpstreamPool, port: Int, _ path: String, body: String? = nil, bearer: String? = nil
    ) async throws -> Answer {
        var fields = [
            H2Field(":method", body == nil ? "GET" : "POST"), H2Field(":scheme", "https"),
            H2Field(":authority", "localhost:\(port)"), H2Field(":path", path),
            H2Field("content-type", "application/json"),
        ]
        if let bearer { fields.append(H2Field("authorization", "Bearer \(bearer)")) }
        let exchange = try await pool.send(
            fields, body: body.map { ByteBuffer(string: $0) }, responseHeadTimeout: .seconds(30))
        var bytes: [UInt8] = []
        for try await chunk in exchange.stream.body { bytes += chunk.readableBytesView }
        return Answer(status: exchange.status, head: exchange.head, text: String(decoding: bytes, as: UTF8.self))
    }

    static func grant(_ pool: UpstreamPool, port: Int, _ body: String) async throws -> Answer {
        try await send(pool, port: port, "/v1/oauth/token", body: body)
    }

    func withService(_ body: (MockClaudeService, UpstreamPool, Int) async throws -> Void) async throws {
        let service = MockClaudeService(longStreamInterval: .milliseconds(50))
        try await TestServer.withUpstreamPool(routes: service.routes) { pool, port in
            try await body(service, pool, port)
        }
    }

    @Test func refreshTokensRotateAndAreGoodOnce() async throws {
        try await withService { service, pool, port in
            let first = try await Self.grant(
                pool, port: port, #"{"grant_type":"authorization_code","code":"alice-1","code_verifier":"v"}"#)
            #expect(first.status == 200)
            #expect((first.json["account"] as? [String: Any])?["email_address"] as? String == "alice@example.com")
            let access = try #require(first.json["access_token"] as? String)
            let refresh = try #require(first.json["refresh_token"] as? String)
            #expect(access.hasPrefix("sk-ant-oat01-") && refresh.hasPrefix("sk-ant-ort01-"))
            #expect(try await Self.send(pool, port: port, "/v1/models", bearer: access).status == 200)

            let refreshBody = #"{"grant_type":"refresh_token","refresh_token":"\#(refresh)"}"#
            let second = try await Self.grant(pool, port: port, refreshBody)
            #expect(second.status == 200 && second.json["refresh_token"] as? String != refresh)
            let reuse = try await Self.grant(pool, port: port, refreshBody)
            #expect(reuse.status == 400 && reuse.json["error"] as? String == "invalid_grant")

            let stats = service.statistics.accounts["alice"]
            #expect(stats?.exchanges == 1 && stats?.refreshes == 1 && stats?.requests == 1)
            let secrets = service.secrets
            #expect(secrets.accessTokens.contains(access) && secrets.refreshTokens.contains(refresh))
            #expect(secrets.codeVerifiers == ["v"])
        }
    }

    @Test func issuedCodeNeedsItsVerifierAndIsGoodOnce() async throws {
        try await withService { _, pool, port in
            let verifier = PKCE.makeVerifier()
            let authorized = try await Self.send(
                pool, port: port, "/mock/control/authorize",
                body: #"{"account":"bob","code_challenge":"\#(PKCE.challenge(for: verifier))"}"#)
            let code = try #require(authorized.json["code"] as? String)
            let wrong = try await Self.grant(
                pool, port: port, #"{"grant_type":"authorization_code","code":"\#(code)","code_verifier":"nope"}"#)
            #expect(wrong.status == 400 && wrong.json["error"] as? String == "invalid_grant")

            let again = try await Self.send(
                pool, port: port, "/mock/control/authorize",
                body: #"{"account":"bob","code_challenge":"\#(PKCE.challenge(for: verifier))"}"#)
            let code2 = try #require(again.json["code"] as? String)
            let body =
                #"{"grant_type":"authorization_code","code":"\#(code2)","code_verifier":"\#(verifier.reveal())"}"#
            #expect(try await Self.grant(pool, port: port, body).status == 200)
            #expect(try await Self.grant(pool, port: port, body).status == 400, "a code is good once")
            let bad = try await Self.grant(
                pool, port: port, #"{"grant_type":"authorization_code","code":"bad-code","code_verifier":"v"}"#)
            #expect(bad.status == 400 && bad.json["error"] as? String == "invalid_grant")
        }
    }

    @Test func revokedTokenGets401UntilTheClientRefreshes() async throws {
        try await withService { service, pool, port in
            let first = try await Self.grant(
                pool, port: port, #"{"grant_type":"authorization_code","code":"carol","code_verifier":"v"}"#)
            let access = try #require(first.json["access_token"] as? String)
            let refresh = try #require(first.json["refresh_token"] as? String)
            _ = try await Self.send(pool, port: port, "/mock/control/revoke", body: #"{"account":"carol"}"#)
            let denied = try await Self.send(pool, port: port, "/v1/messages", body: "{}", bearer: access)
            #expect(denied.status == 401 && denied.text.contains(#""type":"authentication_error""#))
            let renewed = try await Self.grant(
                pool, port: port, #"{"grant_type":"refresh_token","refresh_token":"\#(refresh)"}"#)
            let fresh = try #require(renewed.json["access_token"] as? String)
            #expect(try await Self.send(pool, port: port, "/v1/messages", body: "{}", bearer: fresh).status == 200)
            #expect(service.statistics.accounts["carol"]?.unauthorized == 1)
        }
    }

    @Test func armedFaultCountsDownPerAccount() async throws {
        try await withService { _, pool, port in
            let first = try await Self.grant(
                pool, port: port, #"{"grant_type":"authorization_code","code":"dave","code_verifier":"v"}"#)
            let access = try #require(first.json["access_token"] as? String)
            let armed = try await Self.send(
                pool, port: port, "/mock/control/fault",
                body: #"{"account":"dave","fault":"status-429-unified","count":2}"#)
            #expect(armed.status == 204)
            let before = Date().timeIntervalSince1970
            for _ in 0..<2 {
                let limited = try await Self.send(pool, port: port, "/v1/messages", body: "{}", bearer: access)
                #expect(limited.status == 429)
                #expect(limited.head[field: "anthropic-ratelimit-unified-status"] == "rejected")
                let reset = try #require(limited.head[field: "anthropic-ratelimit-unified-reset"].flatMap(Double.init))
                #expect(abs(reset - before - MockFault.unifiedResetDelay) < 10)
                #expect(limited.head[field: "retry-after"] == nil)
            }
            #expect(try await Self.send(pool, port: port, "/v1/messages", body: "{}", bearer: access).status == 200)
        }
    }

    @Test func longStreamLeftByTheClientIsCountedAsCancelled() async throws {
        try await withService { service, pool, port in
            let first = try await Self.grant(
                pool, port: port, #"{"grant_type":"authorization_code","code":"erin","code_verifier":"v"}"#)
            let access = try #require(first.json["access_token"] as? String)
            _ = try await Self.send(
                pool, port: port, "/mock/control/fault", body: #"{"account":"erin","fault":"long-stream"}"#)
            let exchange = try await pool.send(
                [
                    H2Field(":method", "POST"), H2Field(":scheme", "https"), H2Field(":authority", "localhost:\(port)"),
                    H2Field(":path", "/v1/messages"), H2Field("authorization", "Bearer \(access)"),
                ], body: ByteBuffer(string: #"{"stream":true}"#), responseHeadTimeout: .seconds(30))
            var iterator = exchange.stream.body.makeAsyncIterator()
            _ = try await iterator.next()
            _ = try await iterator.next()
            #expect(service.statistics.streamsOpen == 1)
            exchange.stream.cancel()
            let deadline = ContinuousClock.now + .seconds(5)
            while service.statistics.streamsCancelled == 0 && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(service.statistics.accounts["erin"]?.streamsCancelled == 1)
            #expect(service.statistics.streamsOpen == 0)
        }
    }
}
