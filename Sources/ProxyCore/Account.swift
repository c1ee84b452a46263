import Foundation

/// Stable identifier of an account, e.g. `acc_3f9c0a1b2c3d4e5f` (also its file name: `account_<id>.json`).
public struct AccountID: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) { self.rawValue = rawValue }

    public var description: String { rawValue }

    public static func < (lhs: AccountID, rhs: AccountID) -> Bool { lhs.rawValue < rhs.rawValue }
}

public enum AccountStatus: String, Sendable, Codable, Equatable {
    /// Tokens usable or refreshable.
    case active
    /// The last refresh failed for a transient reason; retried by the scheduler.
    case inactive
    /// The refresh token was rejected (`invalid_grant`): only a new login helps.
    case needsReauth = "needs_reauth"
}

/// OAuth tokens of one account. Never `Codable`: only the vault turns them into bytes, and only encrypted.
public struct Credentials: Sendable, Equatable {
    public var accessToken: Secret
    public var refreshToken: Secret
    public var expiresAt: Date

    public init(accessToken: Secret, refreshToken: Secret, expiresAt: Date) {
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.expiresAt = expiresAt
    }
}

/// Counters observed from responses (JSON `usage`, SSE `message_start`/`message_delta`).
public struct Usage: Sendable, Codable, Equatable {
    public var requests: Int = 0
    public var inputTokens: Int = 0
    public var outputTokens: Int = 0
    public var cacheCreationInputTokens: Int = 0
    public var cacheReadInputTokens: Int = 0

    public init() {}
}

/// What the upstream said about this account's limits.
public struct RateLimitState: Sendable, Codable, Equatable {
    /// No requests go to the account before this instant.
    public var coolingDownUntil: Date?
    /// 429s in a row without a reset hint: doubles the fallback cooldown.
    public var consecutiveRateLimits: Int = 0
    /// `anthropic-ratelimit-unified-status` as last seen (`allowed`, `allowed_warning`, `rejected`).
    public var unifiedStatus: String?

    public init() {}
}

/// One Claude subscription account as the proxy holds it.
public struct Account: Sendable, Equatable {
    public var id: AccountID
    public var name: String
    public var credentials: Credentials
    /// When the next refresh is planned (seed field `refresh_at`).
    public var refreshAt: Date?
    public var status: AccountStatus
    public var lastRefreshAt: Date?
    /// A short, secret-free description of the last refresh failure.
    public var lastRefreshError: String?
    public var email: String?
    public var organization: String?
    public var organizationID: String?
    public var scopes: [String]
    public var subscriptionType: String?
    public var createdAt: Date
    public var lastUsedAt: Date?
    /// Operator switch: a disabled account is never picked.
    public var disabled: Bool
    public var rateLimit: RateLimitState
    public var usage: Usage

    public init(
        id: AccountID,
        name: String,
        credentials: Credentials,
        status: AccountStatus = .active,
        email: String? = nil,
        organization: String? = nil,
        organizationID: String? = nil,
        scopes: [String] = [],
        subscriptionType: String? = nil,
        createdAt: Date
    ) {
        self.id = id
        self.name = name
        self.credentials = credentials
        self.refreshAt = nil
        self.status = status
        self.lastRefreshAt = nil
        self.lastRefreshError = nil
        self.email = email
        self.organization = organization
        self.organizationID = organizationID
        self.scopes = scopes
        self.subscriptionType = subscriptionType
        self.createdAt = createdAt
        self.lastUsedAt = nil
        self.disabled = false
        self.rateLimit = RateLimitState()
        self.usage = Usage()
    }
}
