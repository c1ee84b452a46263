import Foundation
import ProxyCore

/// An account as the admin API shows it (docs/admin-api.md): everything an operator needs, never a token. The
/// access token's last 4 characters (`token_hint`) are the most that is shown.
struct AccountJSON: Encodable {
    struct UsageJSON: Encodable {
        var requests: Int
        var input_tokens: Int
        var output_tokens: Int
        var cache_creation_input_tokens: Int
        var cache_read_input_tokens: Int

        init(_ usage: Usage) {
            requests = usage.requests
            input_tokens = usage.inputTokens
            output_tokens = usage.outputTokens
            cache_creation_input_tokens = usage.cacheCreationInputTokens
            cache_read_input_tokens = usage.cacheReadInputTokens
        }
    }

    var id: String
    var name: String
    var email: String?
    var organization: String?
    var subscription_type: String?
    var scopes: [String]
    var status: String
    var state: String
    var disabled: Bool
    var expires_at: String
    var expires_in_s: Int
    var last_refresh_at: String?
    var last_refresh_error: String?
    var cooling_down_until: String?
    var rate_limit_status: String?
    var created_at: String
    var last_used_at: String?
    var usage: UsageJSON
    var token_hint: String?

    init(_ account: Account, now: Date) {
        id = account.id.rawValue
        name = account.name
        email = account.email
        organization = account.organization
        subscription_type = account.subscriptionType
        scopes = account.scopes
        status = account.status.rawValue
        state = Self.state(of: account, now: now)
        disabled = account.disabled
        expires_at = Self.format(account.credentials.expiresAt)
        expires_in_s = max(0, Int(account.credentials.expiresAt.timeIntervalSince(now)))
        last_refresh_at = account.lastRefreshAt.map(Self.format)
        last_refresh_error = account.lastRefreshError
        cooling_down_until = account.rateLimit.coolingDownUntil.flatMap { $0 > now ? Self.format($0) : nil }
        rate_limit_status = account.rateLimit.unifiedStatus
        created_at = Self.format(account.createdAt)
        last_used_at = account.lastUsedAt.map(Self.format)
        usage = UsageJSON(account.usage)
        let hint = account.credentials.accessToken.hint
        token_hint = hint.isEmpty ? nil : "…" + hint
    }

    /// What the balancer sees now: `available`, `cooling_down`, `needs_reauth`, `disabled`, `inactive`, `expired`.
    static func state(of account: Account, now: Date) -> String {
        if account.disabled { return "disabled" }
        if account.status == .needsReauth { return "needs_reauth" }
        if let until = account.rateLimit.coolingDownUntil, until > now { return "cooling_down" }
        if account.status == .inactive { return "inactive" }
        if account.credentials.expiresAt <= now && account.credentials.refreshToken.isEmpty { return "expired" }
        return "available"
    }

    static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle())
    }
}

/// `{"accounts": [...]}`.
struct AccountListJSON: Encodable {
    var accounts: [AccountJSON]
}
