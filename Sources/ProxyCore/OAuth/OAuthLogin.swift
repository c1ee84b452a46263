import Foundation

/// One login as the admin API sees it: `begin()` hands out an authorize URL and keeps the verifier server-side;
/// `complete(…)` takes what the user pasted (or the callback's code and state) and exchanges it.
public struct OAuthLogin: Sendable {
    public struct Started: Sendable, Equatable {
        public var authorizeURL: String
        public var state: String
    }

    public let client: OAuthClient
    public let pending: PendingAuthorizations

    public init(client: OAuthClient, pending: PendingAuthorizations) {
        self.client = client
        self.pending = pending
    }

    public func begin() -> Started {
        let verifier = PKCE.makeVerifier()
        let state = PKCE.makeState()
        pending.insert(state: state, verifier: verifier)
        return Started(
            authorizeURL: client.authorizeURL(challenge: PKCE.challenge(for: verifier), state: state), state: state)
    }

    /// `pasted` is `CODE#STATE`, a callback URL or a bare code (then `state` is required). With `verifier` (the
    /// seed's `{code, state, code_verifier}` form) no pending authorization is consulted.
    public func complete(pasted: String, state: String? = nil, verifier: Secret? = nil) async throws -> OAuthTokens {
        let input = try AuthorizationInput.parse(pasted, state: state)
        guard let state = input.state else {
            throw OAuthError.malformedAuthorizationInput(reason: "no state: paste CODE#STATE or give the state")
        }
        let codeVerifier = try verifier ?? pending.take(state: state)
        return try await client.exchange(code: input.code, state: state, verifier: codeVerifier)
    }
}
