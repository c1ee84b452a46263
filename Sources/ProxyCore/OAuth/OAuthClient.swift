import Foundation

/// The token endpoint, over `HTTPTransport`: authorization-code exchange and refresh as JSON (ANTHROPIC-WIRE.md),
/// with bounded retries of transient failures through the injected clock.
public struct OAuthClient: Sendable {
    public let settings: OAuthSettings
    private let transport: any HTTPTransport
    private let clock: any ProxyClock
    private let retry: OAuthRetryPolicy

    public init(
        settings: OAuthSettings, transport: any HTTPTransport, clock: any ProxyClock,
        retry: OAuthRetryPolicy = OAuthRetryPolicy()
    ) {
        self.settings = settings
        self.transport = transport
        self.clock = clock
        self.retry = retry
    }

    /// The URL to open in a browser: `code=true&client_id&response_type=code&redirect_uri&scope&code_challenge&
    /// code_challenge_method=S256&state`.
    public func authorizeURL(challenge: String, state: String) -> String {
        let query: [(String, String)] = [
            ("code", "true"),
            ("client_id", settings.clientID),
            ("response_type", "code"),
            ("redirect_uri", settings.redirectURI),
            ("scope", settings.scope),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("state", state),
        ]
        let encoded = query.map { "\($0.0)=\(Self.percentEncode($0.1))" }.joined(separator: "&")
        let separator = settings.authorizeURL.contains("?") ? "&" : "?"
        return settings.authorizeURL + separator + encoded
    }

    /// Trades an authorization code for tokens. An `invalid_grant` means the code was used, expired or belongs to
    /// another verifier.
    public func exchange(code: String, state: String, verifier: Secret) async throws -> OAuthTokens {
        struct Body: Encodable {
            var grant_type = "authorization_code"
            var code: String
            var redirect_uri: String
            var client_id: String
            var code_verifier: String
            var state: String
        }
        let body = Body(
            code: code, redirect_uri: settings.redirectURI, client_id: settings.clientID,
            code_verifier: verifier.reveal(), state: state)
        return try await post(body, secrets: [verifier, Secret(code)])
    }

    /// Trades a refresh token for new tokens. The answer may rotate the refresh token (`refreshToken` non-nil) or
    /// not (`nil`: keep the old one).
    public func refresh(refreshToken: Secret) async throws -> OAuthTokens {
        struct Body: Encodable {
            var grant_type = "refresh_token"
            var refresh_token: String
            var client_id: String
        }
        let body = Body(refresh_token: refreshToken.reveal(), client_id: settings.clientID)
        return try await post(body, secrets: [refreshToken])
    }

    private func post(_ body: some Encodable, secrets: [Secret]) async throws -> OAuthTokens {
        let request = HTTPTransportRequest(
            method: "POST", url: settings.tokenURL,
            headers: [("content-type", "application/json"), ("accept", "application/json")],
            body: Array(try JSONEncoder().encode(body)))
        var attempt = 0
        while true {
            attempt += 1
            let outcome = await attemptOnce(request, secrets: secrets)
            switch outcome {
            case .tokens(let tokens):
                return tokens
            case .fatal(let error):
                throw error
            case .transient(let status, let reason, let retryAfter):
                guard attempt < retry.maxAttempts else {
                    throw OAuthError.transient(status: status, reason: reason, attempts: attempt)
                }
                let delay = retry.delay(afterAttempt: attempt, retryAfter: retryAfter)
                try await clock.sleep(until: clock.now.addingTimeInterval(delay))
            }
        }
    }

    private enum AttemptOutcome {
        case tokens(OAuthTokens)
        case fatal(OAuthError)
        case transient(status: Int?, reason: String, retryAfter: Double?)
    }

    private func attemptOnce(_ request: HTTPTransportRequest, secrets: [Secret]) async -> AttemptOutcome {
        let response: HTTPTransportResponse
        do {
            response = try await transport.send(request)
        } catch {
            let reason = SecretScrubber.scrub(String(describing: error), removing: secrets)
            return .transient(status: nil, reason: reason, retryAfter: nil)
        }
        switch response.status {
        case 200..<300:
            do {
                let decoded = try JSONDecoder().decode(TokenResponseBody.self, from: Data(response.body))
                return .tokens(try decoded.tokens())
            } catch let error as OAuthError {
                return .fatal(error)
            } catch {
                return .fatal(.malformedResponse(reason: "body is not the expected JSON"))
            }
        case 429, 500..<600:
            let retryAfter = response.headers.first { $0.name.lowercased() == "retry-after" }.flatMap {
                Double($0.value.trimmingCharacters(in: .whitespaces))
            }
            return .transient(
                status: response.status, reason: errorSummary(response, secrets: secrets).text,
                retryAfter: retryAfter)
        default:
            let summary = errorSummary(response, secrets: secrets)
            if summary.code == "invalid_grant" { return .fatal(.invalidGrant(description: summary.description)) }
            return .fatal(.rejected(status: response.status, error: summary.code, description: summary.description))
        }
    }

    private func errorSummary(_ response: HTTPTransportResponse, secrets: [Secret]) -> (
        code: String, description: String, text: String
    ) {
        let decoded = try? JSONDecoder().decode(TokenErrorBody.self, from: Data(response.body))
        let code = SecretScrubber.scrub(decoded?.error ?? "unknown_error", removing: secrets, limit: 64)
        let description = SecretScrubber.scrub(decoded?.error_description ?? "", removing: secrets)
        return (code, description, description.isEmpty ? code : "\(code): \(description)")
    }

    /// RFC 3986 unreserved characters pass; everything else is percent-encoded (so `:` `/` and spaces in the
    /// redirect URI and scope are too).
    static func percentEncode(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }
}
