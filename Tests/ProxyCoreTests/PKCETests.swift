import Foundation
import ProxyCore
import ProxyTesting
import Testing

@Suite struct PKCETests {
    @Test func challengeMatchesRFC7636AppendixB() {
        let verifier = Secret("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        #expect(PKCE.challenge(for: verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    }

    @Test func base64URLHasNoPaddingAndURLSafeAlphabet() {
        // RFC 7636 appendix B's verifier is the base64url of these 32 octets.
        let octets: [UInt8] = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77, 105, 214, 191,
            240, 91, 88, 5, 88, 83, 132, 141, 121,
        ]
        #expect(PKCE.base64URL(octets) == "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        #expect(PKCE.base64URL([0xfb, 0xff]) == "-_8")
    }

    @Test func verifiersAndStatesAre43RandomURLSafeCharacters() {
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        var seen = Set<String>()
        for _ in 0..<50 {
            let verifier = PKCE.makeVerifier().reveal()
            let state = PKCE.makeState()
            #expect(verifier.count == 43)
            #expect(state.count == 43)
            #expect(verifier.allSatisfy { allowed.contains($0) })
            #expect(state.allSatisfy { allowed.contains($0) })
            seen.insert(verifier)
            seen.insert(state)
        }
        #expect(seen.count == 100)
    }

    @Test func authorizeURLCarriesEveryParameterInOrder() throws {
        let client = OAuthClient(
            settings: OAuthSettings(), transport: FakeTokenEndpoint(.init(status: 500)), clock: MockClock())
        let url = client.authorizeURL(challenge: "CHALLENGE", state: "STATE")
        let components = try #require(URLComponents(string: url))
        #expect(components.scheme == "https" && components.host == "claude.ai" && components.path == "/oauth/authorize")
        let items = try #require(components.queryItems)
        #expect(
            items.map(\.name) == [
                "code", "client_id", "response_type", "redirect_uri", "scope", "code_challenge",
                "code_challenge_method", "state",
            ])
        let values = Dictionary(uniqueKeysWithValues: items.map { ($0.name, $0.value ?? "") })
        #expect(values["code"] == "true")
        #expect(values["client_id"] == "9d1c250a-e61b-44d9-88ed-5944d1962f5e")
        #expect(values["response_type"] == "code")
        #expect(values["redirect_uri"] == "https://platform.claude.com/oauth/code/callback")
        #expect(values["scope"] == OAuthSettings().scope)
        #expect(values["code_challenge"] == "CHALLENGE")
        #expect(values["code_challenge_method"] == "S256")
        #expect(values["state"] == "STATE")
        #expect(url.contains("scope=org%3Acreate_api_key%20user%3Aprofile"), "spaces and colons are percent-encoded")
    }
}

@Suite struct PendingAuthorizationsTests {
    @Test func aStateIsUsableOnce() throws {
        let pending = PendingAuthorizations(clock: MockClock())
        pending.insert(state: "s1", verifier: Secret("v1"))
        #expect(try pending.take(state: "s1") == Secret("v1"))
        #expect(throws: OAuthError.unknownState) { try pending.take(state: "s1") }
    }

    @Test func unknownStateIsRefused() {
        let pending = PendingAuthorizations(clock: MockClock())
        pending.insert(state: "s1", verifier: Secret("v1"))
        #expect(throws: OAuthError.unknownState) { try pending.take(state: "other") }
        #expect(pending.count == 1)
    }

    @Test func statesExpireAfterTenMinutes() throws {
        let clock = MockClock()
        let pending = PendingAuthorizations(clock: clock)
        pending.insert(state: "fresh", verifier: Secret("v1"))
        pending.insert(state: "stale", verifier: Secret("v2"))
        clock.advance(by: 599)
        #expect(try pending.take(state: "fresh") == Secret("v1"))
        clock.advance(by: 1)
        #expect(throws: OAuthError.expiredState) { try pending.take(state: "stale") }
        #expect(throws: OAuthError.unknownState) { try pending.take(state: "stale") }
    }

    @Test func expiredEntriesArePrunedAndCapacityIsBounded() {
        let clock = MockClock()
        let pending = PendingAuthorizations(clock: clock, capacity: 3)
        for index in 0..<5 { pending.insert(state: "s\(index)", verifier: Secret("v")) }
        #expect(pending.count == 3)
        clock.advance(by: 601)
        pending.insert(state: "new", verifier: Secret("v"))
        #expect(pending.count == 1)
    }

    @Test func loginBeginsWithAURLWhoseChallengeMatchesTheKeptVerifier() throws {
        let clock = MockClock()
        let client = OAuthClient(
            settings: OAuthSettings(), transport: FakeTokenEndpoint(.init(status: 500)), clock: clock)
        let login = OAuthLogin(client: client, pending: PendingAuthorizations(clock: clock))
        let started = login.begin()
        let items = try #require(URLComponents(string: started.authorizeURL)?.queryItems)
        let challenge = try #require(items.first { $0.name == "code_challenge" }?.value)
        #expect(items.first { $0.name == "state" }?.value == started.state)
        let verifier = try login.pending.take(state: started.state)
        #expect(PKCE.challenge(for: verifier) == challenge)
    }
}

@Suite struct AuthorizationInputTests {
    struct Case: Sendable, CustomStringConvertible {
        var text: String
        var separateState: String?
        var code: String
        var state: String?
        var description: String { text }
    }

    static let cases: [Case] = [
        Case(text: "abc123#st456", code: "abc123", state: "st456"),
        Case(text: "  abc123#st456\n", code: "abc123", state: "st456"),
        Case(
            text: "https://platform.claude.com/oauth/code/callback?code=abc123&state=st456", code: "abc123",
            state: "st456"),
        Case(text: "https://proxy.example/oauth/callback?state=st456&code=abc123", code: "abc123", state: "st456"),
        Case(text: "https://platform.claude.com/oauth/code/callback?code=abc123#st456", code: "abc123", state: "st456"),
        Case(text: "code=abc123&state=st456", code: "abc123", state: "st456"),
        Case(text: "abc123", separateState: "st456", code: "abc123", state: "st456"),
        Case(text: "abc123", code: "abc123", state: nil),
        Case(text: "abc123#st456", separateState: "st456", code: "abc123", state: "st456"),
    ]

    @Test(arguments: cases) func parses(_ testCase: Case) throws {
        let input = try AuthorizationInput.parse(testCase.text, state: testCase.separateState)
        #expect(input.code == testCase.code)
        #expect(input.state == testCase.state)
    }

    @Test(arguments: ["", "   ", "#st456", "https://platform.claude.com/oauth/code/callback?state=st456", "abc 123#st"])
    func refuses(_ text: String) {
        #expect(throws: OAuthError.self) { try AuthorizationInput.parse(text) }
    }

    @Test func refusesAStateThatDisagrees() {
        #expect(throws: OAuthError.self) { try AuthorizationInput.parse("abc#one", state: "two") }
    }

    @Test func reportsAnErrorInTheCallback() {
        #expect(
            throws: OAuthError.malformedAuthorizationInput(reason: "the authorization server answered access_denied")
        ) {
            try AuthorizationInput.parse("https://x.example/cb?error=access_denied&state=s")
        }
    }
}
