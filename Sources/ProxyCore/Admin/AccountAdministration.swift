import Foundation

/// What the admin API does to accounts, keeping storage, the balancer's view and the refresher's token cache in
/// step. Every change is made through the store's atomic `update` (or a whole `save` of a new account), so a
/// failure leaves the stored account as it was.
public struct AccountAdministration: Sendable {
    public let store: FileAccountStore
    let balancer: Balancer
    let refresher: TokenRefresher
    let usage: UsageRecorder?
    let clock: any ProxyClock

    public init(
        store: FileAccountStore, balancer: Balancer, refresher: TokenRefresher, usage: UsageRecorder?,
        clock: any ProxyClock
    ) {
        self.store = store
        self.balancer = balancer
        self.refresher = refresher
        self.usage = usage
        self.clock = clock
    }

    /// The accounts as they are right now: stored fields, with the balancer's live cooldowns and the usage
    /// counted since the last save.
    public func accounts() async throws -> [Account] {
        let stored = try await store.list()
        let live = Dictionary(balancer.snapshot.map { ($0.id, $0.rateLimit) }, uniquingKeysWith: { $1 })
        let pending = usage?.pendingUsage ?? [:]
        return stored.map { account in
            var account = account
            if let rateLimit = live[account.id] { account.rateLimit = rateLimit }
            if let extra = pending[account.id] {
                account.usage.add(extra.usage)
                account.lastUsedAt = extra.lastUsed
            }
            return account
        }
    }

    public func account(_ id: AccountID) async throws -> Account? {
        try await accounts().first { $0.id == id }
    }

    /// A finished login. The same person logging in again (same email) gets new tokens on their existing account,
    /// which also brings a `needs_reauth` account back; anyone else becomes a new account.
    public func add(_ tokens: OAuthTokens, name: String?) async throws -> Account {
        let now = clock.now
        if let email = tokens.email?.lowercased(),
            let existing = try await store.list().first(where: { $0.email?.lowercased() == email })
        {
            let updated = try await store.update(existing.id) { account in
                account.credentials = tokens.credentials(
                    issuedAt: now, previousRefreshToken: account.credentials.refreshToken)
                account.status = .active
                account.lastRefreshError = nil
                account.lastRefreshAt = now
                if !tokens.scopes.isEmpty { account.scopes = tokens.scopes }
                if let name, !name.isEmpty { account.name = name }
            }
            if let updated {
                changed(updated)
                return updated
            }
        }
        var account = Account(
            id: AccountImport.newAccountID(),
            name: name.flatMap { $0.isEmpty ? nil : $0 } ?? tokens.email ?? "claude-account",
            credentials: tokens.credentials(issuedAt: now),
            email: tokens.email, organization: tokens.organizationName, organizationID: tokens.organizationID,
            scopes: tokens.scopes, createdAt: now)
        account.lastRefreshAt = now
        try await store.save(account)
        changed(account)
        return account
    }

    /// Claude Code's credentials file or the seed's account JSON.
    public func importAccount(_ data: Data, name: String?) async throws -> Account {
        let account = try AccountImport.parse(data, name: name, now: clock.now)
        if try await store.get(account.id) != nil { throw AccountAdministrationError.alreadyExists(account.id) }
        try await store.save(account)
        changed(account)
        return account
    }

    /// Renames or switches the account on or off; `nil` when there is no such account.
    public func edit(_ id: AccountID, name: String?, disabled: Bool?) async throws -> Account? {
        guard
            let updated = try await store.update(
                id,
                { account in
                    if let name { account.name = name }
                    if let disabled { account.disabled = disabled }
                })
        else { return nil }
        changed(updated)
        return try await account(id)
    }

    /// Removes the account and forgets its token; returns whether it existed.
    public func delete(_ id: AccountID) async throws -> Bool {
        let existed = try await store.delete(id)
        balancer.removeAccount(id)
        refresher.invalidate(id)
        return existed
    }

    /// Refreshes the account's tokens now, whatever their expiry (single flight with any other refresh).
    public func refreshNow(_ id: AccountID) async throws -> Account {
        guard try await store.get(id) != nil else { throw OAuthError.unknownAccount(id) }
        _ = try await refresher.refresh(for: id, ifExpiringBefore: .distantFuture)
        guard let account = try await account(id) else { throw OAuthError.unknownAccount(id) }
        return account
    }

    private func changed(_ account: Account) {
        refresher.invalidate(account.id)
        balancer.accountDidChange(account)
    }
}

public enum AccountAdministrationError: Error, Sendable, Equatable, CustomStringConvertible {
    case alreadyExists(AccountID)

    public var description: String {
        switch self {
        case .alreadyExists(let id): "an account with id \(id) already exists"
        }
    }
}
