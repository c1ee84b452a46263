/// Counters for one account of the mock (`GET /mock/control/stats`).
public struct MockAccountStats: Sendable, Equatable, Codable {
    /// `/v1/*` requests with a valid access token.
    public var requests = 0
    /// `/v1/*` requests with one of its revoked access tokens.
    public var unauthorized = 0
    public var refreshes = 0
    public var exchanges = 0
    public var streamsOpen = 0
    public var streamsCompleted = 0
    /// Streams whose client went away before the end (a body write failed).
    public var streamsCancelled = 0
    /// Streams the mock broke on purpose (`rst-mid-body`).
    public var streamsBroken = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case requests, unauthorized, refreshes, exchanges
        case streamsOpen = "streams_open"
        case streamsCompleted = "streams_completed"
        case streamsCancelled = "streams_cancelled"
        case streamsBroken = "streams_broken"
    }
}

/// `GET /mock/control/stats`.
public struct MockStatistics: Sendable, Equatable, Codable {
    public var accounts: [String: MockAccountStats]
    /// Calls of the token endpoint, both grants.
    public var tokenRequests: Int
    public var streamsOpen: Int
    public var streamsCancelled: Int

    enum CodingKeys: String, CodingKey {
        case accounts
        case tokenRequests = "token_requests"
        case streamsOpen = "streams_open"
        case streamsCancelled = "streams_cancelled"
    }
}

/// `GET /mock/control/secrets`: every access token, refresh token and code verifier the mock issued or was
/// sent — the oracle the end-to-end suite's secret-hygiene check searches the proxy's output for.
public struct MockSecrets: Sendable, Equatable, Codable {
    public var accessTokens: Set<String> = []
    public var refreshTokens: Set<String> = []
    public var codeVerifiers: Set<String> = []

    enum CodingKeys: String, CodingKey {
        case accessTokens = "access_tokens"
        case refreshTokens = "refresh_tokens"
        case codeVerifiers = "code_verifiers"
    }
}
