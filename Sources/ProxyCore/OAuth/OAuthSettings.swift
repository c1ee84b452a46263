/// The OAuth client settings the core needs (`oauth.*` in the server's config); defaults from ANTHROPIC-WIRE.md.
public struct OAuthSettings: Sendable, Equatable {
    public var clientID: String
    public var authorizeURL: String
    public var tokenURL: String
    public var redirectURI: String
    public var scope: String

    public init(
        clientID: String = "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
        authorizeURL: String = "https://claude.ai/oauth/authorize",
        tokenURL: String = "https://platform.claude.com/v1/oauth/token",
        redirectURI: String = "https://platform.claude.com/oauth/code/callback",
        scope: String =
            "org:create_api_key user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload"
    ) {
        self.clientID = clientID
        self.authorizeURL = authorizeURL
        self.tokenURL = tokenURL
        self.redirectURI = redirectURI
        self.scope = scope
    }
}

/// Retries of the token endpoint for transient failures (429, 5xx, network): bounded attempts, exponential delays
/// slept through the injected clock.
public struct OAuthRetryPolicy: Sendable, Equatable {
    /// Total attempts, the first included.
    public var maxAttempts: Int
    public var baseDelay: Double
    public var maxDelay: Double

    public init(maxAttempts: Int = 3, baseDelay: Double = 1, maxDelay: Double = 30) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// Delay before attempt `attempt + 1` (attempt counts from 1); a server's `retry-after` wins if longer.
    func delay(afterAttempt attempt: Int, retryAfter: Double?) -> Double {
        let exponential = baseDelay * Double(1 << min(attempt - 1, 20))
        return min(maxDelay, max(exponential, retryAfter ?? 0))
    }
}
