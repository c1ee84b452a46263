import Foundation

/// Counts of accounts by what they can do right now, for `/health` and the dashboard. No secrets.
public struct AccountSummary: Sendable, Codable, Equatable {
    public var total = 0
    /// Usable now: active, enabled, not cooling down, token valid or refreshable.
    public var available = 0
    public var coolingDown = 0
    public var needsReauth = 0
    public var disabled = 0

    enum CodingKeys: String, CodingKey {
        case total, available, disabled
        case coolingDown = "cooling_down"
        case needsReauth = "needs_reauth"
    }

    public init() {}

    public init(_ accounts: [Account], now: Date) {
        total = accounts.count
        for account in accounts {
            if account.disabled {
                disabled += 1
            } else if account.status == .needsReauth {
                needsReauth += 1
            } else if let until = account.rateLimit.coolingDownUntil, until > now {
                coolingDown += 1
            } else if account.status == .active
                && (account.credentials.expiresAt > now || !account.credentials.refreshToken.isEmpty)
            {
                available += 1
            }
        }
    }
}
