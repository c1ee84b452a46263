import Foundation

/// One selection policy (`round_robin`, `session_affinity`, …): picks an account among the candidates the balancer
/// shows it. Named `AccountSelector`, not `Selector`, so that it never clashes with Objective-C's `Selector` on macOS.
public protocol AccountSelector: Sendable {
    /// The account for this request, or `nil` when no candidate is available. `session` is the conversation key
    /// (`metadata.user_id` or a configured header's value) when the request has one.
    func select(from candidates: borrowing CandidateView, session: String?) -> AccountID?
}

/// What the balancer knows about one account: only what picking needs, so a pick touches no storage.
public struct BalancerEntry: Sendable, Equatable {
    public let id: AccountID
    /// Status `active` and not disabled by the operator (so not `needs_reauth` nor `inactive` either).
    public var enabled: Bool
    public var tokenExpiresAt: Date
    public var hasRefreshToken: Bool
    public var rateLimit: RateLimitState

    public init(id: AccountID, enabled: Bool, tokenExpiresAt: Date, hasRefreshToken: Bool, rateLimit: RateLimitState) {
        self.id = id
        self.enabled = enabled
        self.tokenExpiresAt = tokenExpiresAt
        self.hasRefreshToken = hasRefreshToken
        self.rateLimit = rateLimit
    }

    public init(_ account: Account) {
        self.init(
            id: account.id, enabled: account.status == .active && !account.disabled,
            tokenExpiresAt: account.credentials.expiresAt, hasRefreshToken: !account.credentials.refreshToken.isEmpty,
            rateLimit: account.rateLimit)
    }
}

public enum Availability: Sendable, Equatable {
    case unavailable
    /// Usable after a refresh (token expired or about to).
    case refreshable
    /// Token valid now, beyond the refresh buffer.
    case ready
}

/// The balancer's accounts at one instant, as a selector sees them.
public struct CandidateView: ~Copyable {
    public let entries: [BalancerEntry]
    public let now: Date
    /// A token counts as valid now only if it stays valid this long (the refresher's buffer).
    public let readyMargin: TimeInterval

    public init(entries: [BalancerEntry], now: Date, readyMargin: TimeInterval) {
        self.entries = entries
        self.now = now
        self.readyMargin = readyMargin
    }

    public func availability(at index: Int) -> Availability {
        let entry = entries[index]
        guard entry.enabled else { return .unavailable }
        if let until = entry.rateLimit.coolingDownUntil, until > now { return .unavailable }
        if entry.tokenExpiresAt > now.addingTimeInterval(readyMargin) { return .ready }
        return entry.hasRefreshToken ? .refreshable : .unavailable
    }

    public func index(of id: AccountID) -> Int? { entries.firstIndex { $0.id == id } }
}
