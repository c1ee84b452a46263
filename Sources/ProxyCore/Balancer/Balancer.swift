import Foundation
import Synchronization

public enum BalancerPick: Sendable, Equatable {
    case account(AccountID)
    /// No account can take the request; `retryAt` is when the first cooling-down one frees up (`nil`: none will by
    /// itself — every account is disabled, needs a login or has no usable token).
    case unavailable(retryAt: Date?)
}

/// Chooses the account for each request through a selector, over an in-memory view of the accounts kept current by
/// `replaceAccounts`, `accountDidChange` (the refresher tells it) and `record(status:headers:for:)` (responses).
public final class Balancer: AccountObserver {
    public let selector: any AccountSelector
    public let cooldown: CooldownPolicy
    private let clock: any ProxyClock
    private let readyMargin: TimeInterval
    /// Read by every request, written on account changes and rate-limited responses: a short critical section.
    private let entries = Mutex<[BalancerEntry]>([])

    /// `readyMargin` should equal the refresher's buffer: tokens within it count as needing a refresh.
    public init(
        selector: any AccountSelector = RoundRobinSelector(), cooldown: CooldownPolicy = CooldownPolicy(),
        clock: any ProxyClock, readyMargin: TimeInterval = 60, accounts: [Account] = []
    ) {
        self.selector = selector
        self.cooldown = cooldown
        self.clock = clock
        self.readyMargin = readyMargin
        replaceAccounts(accounts)
    }

    public func pick(session: String? = nil) -> BalancerPick {
        let now = clock.now
        return entries.withLock { entries in
            let view = CandidateView(entries: entries, now: now, readyMargin: readyMargin)
            if let id = selector.select(from: view, session: session) { return .account(id) }
            return .unavailable(retryAt: Self.firstRelease(entries, now: now))
        }
    }

    /// Observes a response from upstream for `id`; returns the new rate-limit state when it changed, for the
    /// caller to persist (`nil` when nothing changed or for an account the balancer does not know).
    @discardableResult
    public func record(status: Int, headers: [(name: String, value: String)], for id: AccountID) -> RateLimitState? {
        record(status: status, for: id) { CooldownPolicy.header($0, in: headers) }
    }

    /// The same, with the response's headers looked up by lower-case name (`CooldownPolicy.next`).
    public func record(status: Int, for id: AccountID, header: (String) -> String?) -> RateLimitState? {
        let now = clock.now
        return entries.withLock { entries in
            guard let index = entries.firstIndex(where: { $0.id == id }) else { return nil }
            let next = cooldown.next(after: entries[index].rateLimit, status: status, now: now, header: header)
            guard next != entries[index].rateLimit else { return nil }
            entries[index].rateLimit = next
            return next
        }
    }

    /// Replaces the whole view (at start-up, after an import or a deletion); order is the rotation order.
    public func replaceAccounts(_ accounts: [Account]) {
        let fresh = accounts.sorted { $0.id < $1.id }.map(BalancerEntry.init)
        entries.withLock { $0 = fresh }
    }

    /// Adds or updates one account (new tokens, status, operator switch). Keeps the balancer's own cooldown when the
    /// account's stored one is older.
    public func accountDidChange(_ account: Account) {
        var entry = BalancerEntry(account)
        entries.withLock { entries in
            if let index = entries.firstIndex(where: { $0.id == account.id }) {
                if let mine = entries[index].rateLimit.coolingDownUntil,
                    mine > (entry.rateLimit.coolingDownUntil ?? .distantPast)
                {
                    entry.rateLimit = entries[index].rateLimit
                }
                entries[index] = entry
            } else {
                let position = entries.firstIndex { $0.id > account.id } ?? entries.endIndex
                entries.insert(entry, at: position)
            }
        }
    }

    public func removeAccount(_ id: AccountID) {
        entries.withLock { $0.removeAll { $0.id == id } }
    }

    public var snapshot: [BalancerEntry] { entries.withLock { $0 } }

    private static func firstRelease(_ entries: [BalancerEntry], now: Date) -> Date? {
        var first: Date?
        for entry in entries where entry.enabled {
            guard let until = entry.rateLimit.coolingDownUntil, until > now else { continue }
            guard entry.hasRefreshToken || entry.tokenExpiresAt > until else { continue }
            if first == nil || until < first! { first = until }
        }
        return first
    }
}
