import Foundation
import ProxyCore
import ProxyTesting
import Testing

@Suite struct OAuthClientTests {
    let settings = OAuthSettings(
        clientID: "client-1", tokenURL: "https://auth.example/v1/oauth/token",
        redirectURI: "https://cb.example/callback")

    @Test func exchangeSendsTheDocumentedJSONBody() async throws {
        let endpoint = FakeTokenEndpoint(TokenEndpointResponses.tokens(access: "access-1", refresh: "refresh-1"))
        let client = OAuthClient(settings: settings, transport: endpoint, clock: MockClock())
        let tokens = try await client.exchange(code: "code-1", state: "state-1", verifier: Secret("verifier-1"))
        let request = try #require(endpoint.requests.first)
        #expect(request.method == "POST")
        #expect(request.url == "https://auth.example/v1/oauth/token")
        #expect(request.headers.contains { $0.name == "content-type" && $0.value == "application/json" })
        #expect(
            endpoint.bodies == [
                [
                    "grant_type": "authorization_code", "code": "code-1", "redirect_uri": "https://cb.example/callback",
                    "client_id": "client-1", "code_verifier": "verifier-1", "state": "state-1",
                ]
            ])
        #expect(tokens.accessToken == Secret("access-1"))
        #expect(tokens.refreshToken == Secret("refresh-1"))
        #expect(tokens.expiresIn == 28800)
        #expect(tokens.scopes == ["user:inference", "user:profile"])
        #expect(tokens.email == "someone@example.com")
        #expect(tokens.organizationID == "org-1" && tokens.organizationName == "Test Org")
    }

    @Test func refreshSendsTheDocumentedJSONBody() async throws {
        let endpoint = FakeTokenEndpoint(TokenEndpointResponses.tokens(access: "access-2", refresh: "refresh-2"))
        let client = OAuthClient(settings: settings, transport: endpoint, clock: MockClock())
        _ = try await client.refresh(refreshToken: Secret("refresh-1"))
        #expect(
            endpoint.bodies == [["grant_type": "refresh_token", "refresh_token": "refresh-1", "client_id": "client-1"]])
    }

    @Test func aResponseWithoutRefreshTokenLeavesItNil() async throws {
        let endpoint = FakeTokenEndpoint(TokenEndpointResponses.tokens(access: "access-2", refresh: nil))
        let client = OAuthClient(settings: settings, transport: endpoint, clock: MockClock())
        let tokens = try await client.refresh(refreshToken: Secret("refresh-1"))
        #expect(tokens.refreshToken == nil)
        let credentials = tokens.credentials(
            issuedAt: Date(timeIntervalSince1970: 0), previousRefreshToken: Secret("refresh-1"))
        #expect(credentials.refreshToken == Secret("refresh-1"))
        #expect(credentials.expiresAt == Date(timeIntervalSince1970: 28800))
    }

    @Test func anEmptyRefreshTokenCountsAsNone() async throws {
        let endpoint = FakeTokenEndpoint(TokenEndpointResponses.tokens(access: "access-2", refresh: ""))
        let client = OAuthClient(settings: settings, transport: endpoint, clock: MockClock())
        #expect(try await client.refresh(refreshToken: Secret("refresh-1")).refreshToken == nil)
    }

    @Test func invalidGrantIsNotRetried() async {
        let endpoint = FakeTokenEndpoint(TokenEndpointResponses.error(400, "invalid_grant", "Refresh token not found"))
        let client = OAuthClient(settings: settings, transport: endpoint, clock: MockClock())
        await #expect(throws: OAuthError.invalidGrant(description: "Refresh token not found")) {
            try await client.refresh(refreshToken: Secret("refresh-1"))
        }
        #expect(endpoint.callCount == 1)
    }

    @Test func otherClientErrorsAreNotRetried() async {
        let endpoint = FakeTokenEndpoint(TokenEndpointResponses.error(401, "invalid_client"))
        let client = OAuthClient(settings: settings, transport: endpoint, clock: MockClock())
        await #expect(throws: OAuthError.rejected(status: 401, error: "invalid_client", description: "")) {
            try await client.refresh(refreshToken: Secret("refresh-1"))
        }
        #expect(endpoint.callCount == 1)
    }

    @Test func transientFailuresAreRetriedWithBackoffThroughTheClock() async throws {
        let endpoint = FakeTokenEndpoint([
            .response(TokenEndpointResponses.error(503, "overloaded")), .networkFailure,
            .response(TokenEndpointResponses.tokens(access: "access-2", refresh: "refresh-2")),
        ])
        let clock = MockClock()
        let start = clock.now
        let client = OAuthClient(
            settings: settings, transport: endpoint, clock: clock,
            retry: OAuthRetryPolicy(maxAttempts: 3, baseDelay: 1, maxDelay: 30))
        let refresh = Task { try await client.refresh(refreshToken: Secret("refresh-1")) }
        await clock.waitForSleepers(1)
        #expect(clock.sleeperDeadlines == [start.addingTimeInterval(1)])
        clock.advance(by: 1)
        await clock.waitForSleepers(1)
        #expect(clock.sleeperDeadlines == [start.addingTimeInterval(3)], "second delay doubles")
        clock.advance(by: 2)
        #expect(try await refresh.value.accessToken == Secret("access-2"))
        #expect(endpoint.callCount == 3)
    }

    @Test func retryAfterLengthensTheDelay() async throws {
        var limited = TokenEndpointResponses.error(429, "rate_limited")
        limited.headers.append(("Retry-After", "7"))
        let endpoint = FakeTokenEndpoint([
            .response(limited), .response(TokenEndpointResponses.tokens(access: "a", refresh: nil)),
        ])
        let clock = MockClock()
        let client = OAuthClient(settings: settings, transport: endpoint, clock: clock)
        let refresh = Task { try await client.refresh(refreshToken: Secret("refresh-1")) }
        await clock.waitForSleepers(1)
        #expect(clock.sleeperDeadlines == [clock.now.addingTimeInterval(7)])
        clock.advance(by: 7)
        _ = try await refresh.value
    }

    @Test func attemptsAreBounded() async {
        let endpoint = FakeTokenEndpoint([.networkFailure])
        let clock = MockClock()
        let client = OAuthClient(
            settings: settings, transport: endpoint, clock: clock, retry: OAuthRetryPolicy(maxAttempts: 2, baseDelay: 1)
        )
        let refresh = Task { try await client.refresh(refreshToken: Secret("refresh-1")) }
        await clock.waitForSleepers(1)
        clock.advance(by: 60)
        await #expect(throws: OAuthError.transient(status: nil, reason: "connection reset", attempts: 2)) {
            try await refresh.value
        }
        #expect(endpoint.callCount == 2)
    }

    @Test(arguments: [
        TokenEndpointResponses.json(200, ["token_type": "Bearer", "expires_in": 100]),
        TokenEndpointResponses.json(200, ["access_token": "", "expires_in": 100]),
        TokenEndpointResponses.json(200, ["access_token": "a"]),
        TokenEndpointResponses.json(200, ["access_token": "a", "expires_in": 100, "token_type": "mac"]),
        HTTPTransportResponse(status: 200, body: Array("not json".utf8)),
    ])
    func malformedResponsesAreReported(_ response: HTTPTransportResponse) async {
        let endpoint = FakeTokenEndpoint(response)
        let client = OAuthClient(settings: settings, transport: endpoint, clock: MockClock())
        await #expect {
            try await client.refresh(refreshToken: Secret("refresh-1"))
        } throws: { error in
            guard case .malformedResponse = error as? OAuthError else { return false }
            return true
        }
        #expect(endpoint.callCount == 1)
    }

    @Test func errorsNeverCarryTokensOrVerifiers() async throws {
        let refresh = Fixtures.tokenShaped("ort", "refreshsecret")
        let verifier = "verifier-secret-value-0123456789abcdefghijk"
        let echoedNew = Fixtures.tokenShaped("oat", "unsentsecret")
        let echoes: [HTTPTransportResponse] = [
            TokenEndpointResponses.error(400, "invalid_grant", "token \(refresh) was revoked; verifier \(verifier)"),
            TokenEndpointResponses.error(400, "invalid_request \(refresh)", "bad \(echoedNew)"),
            TokenEndpointResponses.error(503, "unavailable", "try later with \(refresh)"),
        ]
        for response in echoes {
            let endpoint = FakeTokenEndpoint(response)
            let client = OAuthClient(
                settings: settings, transport: endpoint, clock: MockClock(), retry: OAuthRetryPolicy(maxAttempts: 1))
            for call in 0..<2 {
                do {
                    if call == 0 {
                        _ = try await client.refresh(refreshToken: Secret(refresh))
                    } else {
                        _ = try await client.exchange(code: "c", state: "s", verifier: Secret(verifier))
                    }
                    Issue.record("expected a failure")
                } catch {
                    let texts = ["\(error)", String(reflecting: error), error.localizedDescription]
                    for text in texts {
                        #expect(!text.contains("refreshsecret"), "\(text)")
                        #expect(!text.contains("unsentsecret"), "\(text)")
                        if call == 1 { #expect(!text.contains(verifier), "\(text)") }
                    }
                }
            }
        }
    }
}
