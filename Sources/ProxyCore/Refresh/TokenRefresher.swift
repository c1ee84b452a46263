import Foundation
import Logging
import Synchronization

/// Hands out access tokens and refreshes them: at most one refresh per account in flight, whoever triggers it
/// (a request finding its token about to expire, an upstream 401, the hourly scheduler). Refresh tokens are single
/// use, so a second concurrent refresh would fail with `invalid_grant` and could kill the account.
public actor TokenRefresher {
    /// A token is handed out only if it stays valid at least this long (`refresh.buffer`).
    public nonisolated let buffer: TimeInterval
    private nonisolated let clock: any ProxyClock
    private let repository: any AccountRepository
    private let client: OAuthClient
    private let lock: any RefreshLock
    private let observer: (any AccountObserver)?
    /// After a failed refresh, on-demand callers get that failure (or the still-valid old token) for this long
    /// instead of hitting a struggling token endpoint again.
    private let failureHoldOff: TimeInterval
    private let logger: Logger
    /// Told the result of every call to the token endpoint (metrics).
    private let onRefresh: (@Sendable (RefreshResult) -> Void)?

    /// Tokens known good, read on the request path without entering the actor: one lock and one lookup.
    private nonisolated let cache = Mutex<[AccountID: CachedToken]>([:])
    private var inFlight: [AccountID: Task<Secret, any Error>] = [:]
    private var recentFailures: [AccountID: Failure] = [:]

    private struct CachedToken: Sendable {
        var token: Secret
        var expiresAt: Date
        /// `Bearer <token>`, made once per token rather than for every request sent with it.
        var authorization: Secret

        init(token: Secret, expiresAt: Date) {
            self.token = token
            self.expiresAt = expiresAt
            authorization = token.bearer
        }
    }

    private struct Failure {
        var at: Date
        var error: any Error
        /// The old token when it had not expired yet: on-demand callers may keep using it.
        var usable: CachedToken?
    }

    private enum Reason: Sendable {
        /// Refresh unless the stored token is valid beyond the deadline (`nil`: now + buffer).
        case expiring(before: Date?)
        /// Upstream answered 401 to this token: refresh unless the stored token is already another one.
        case rejected(Secret)
    }

    public init(
        repository: any AccountRepository, client: OAuthClient, clock: any ProxyClock, buffer: TimeInterval = 60,
        lock: any RefreshLock = InProcessRefreshLock(), observer: (any AccountObserver)? = nil,
        failureHoldOff: TimeInterval = 5, logger: Logger = Logger(label: "claude-proxy.refresh"),
        onRefresh: (@Sendable (RefreshResult) -> Void)? = nil
    ) {
        self.onRefresh = onRefresh
        self.repository = repository
        self.client = client
        self.clock = clock
        self.buffer = buffer
        self.lock = lock
        self.observer = observer
        self.failureHoldOff = failureHoldOff
        self.logger = logger
    }

    /// A token valid for longer than `buffer`: at once from memory when there is one, else after the account's
    /// single in-flight refresh (started here if none is running).
    public nonisolated func validToken(for id: AccountID) async throws -> Secret {
        if let token = cachedToken(for: id) { return token }
        return try await tokenOnDemand(for: id)
    }

    /// The fast path alone: the cached token if it stays valid beyond `buffer`, else `nil`.
    public nonisolated func cachedToken(for id: AccountID) -> Secret? {
        cachedAuthorization(for: id)?.token
    }

    /// `cachedToken(for:)` with its `Authorization` value (`Bearer <token>`), for the relay's fast path.
    public nonisolated func cachedAuthorization(for id: AccountID) -> (token: Secret, authorization: Secret)? {
        let deadline = clock.now.addingTimeInterval(buffer)
        return cache.withLock { cache in
            guard let entry = cache[id], entry.expiresAt > deadline else { return nil }
            return (entry.token, entry.authorization)
        }
    }

    /// After an upstream 401 with `rejectedToken`: refreshes once, however many requests saw the 401. When the
    /// stored token is already another one, returns it without calling the token endpoint.
    public func forceRefresh(for id: AccountID, rejectedToken: Secret) async throws -> Secret {
        cache.withLock { cache in
            if cache[id]?.token == rejectedToken { cache[id] = nil }
        }
        if let current = cachedToken(for: id), current != rejectedToken { return current }
        if let running = inFlight[id] {
            let token = try await running.value
            if token != rejectedToken { return token }
        }
        if inFlight[id] == nil, let failure = recentFailures[id],
            clock.now < failure.at.addingTimeInterval(failureHoldOff)
        {
            throw failure.error
        }
        return try await (inFlight[id] ?? start(id, .rejected(rejectedToken))).value
    }

    /// For the scheduler: refreshes if the stored token expires before `deadline` (joining a running refresh).
    @discardableResult
    public func refresh(for id: AccountID, ifExpiringBefore deadline: Date) async throws -> Secret {
        try await (inFlight[id] ?? start(id, .expiring(before: deadline))).value
    }

    /// Forget the cached token (the account was re-logged-in, edited or removed elsewhere).
    public nonisolated func invalidate(_ id: AccountID) {
        _ = cache.withLock { $0.removeValue(forKey: id) }
    }

    private func tokenOnDemand(for id: AccountID) async throws -> Secret {
        if inFlight[id] == nil, let failure = recentFailures[id],
            clock.now < failure.at.addingTimeInterval(failureHoldOff)
        {
            if let usable = failure.usable, usable.expiresAt > clock.now { return usable.token }
            throw failure.error
        }
        do {
            return try await (inFlight[id] ?? start(id, .expiring(before: nil))).value
        } catch {
            if let usable = recentFailures[id]?.usable, usable.expiresAt > clock.now { return usable.token }
            throw error
        }
    }

    private func start(_ id: AccountID, _ reason: Reason) -> Task<Secret, any Error> {
        let task = Task { try await self.perform(id, reason) }
        inFlight[id] = task
        return task
    }

    private func perform(_ id: AccountID, _ reason: Reason) async throws -> Secret {
        defer { inFlight[id] = nil }
        do {
            let token = try await lock.withLock(id) { try await self.refreshUnderLock(id, reason) }
            recentFailures[id] = nil
            return token
        } catch {
            var usable: CachedToken?
            if case .expiring = reason, let account = try? await repository.account(id), account.status != .needsReauth,
                account.credentials.expiresAt > clock.now
            {
                usable = CachedToken(token: account.credentials.accessToken, expiresAt: account.credentials.expiresAt)
            }
            recentFailures[id] = Failure(at: clock.now, error: error, usable: usable)
            throw error
        }
    }

    private func refreshUnderLock(_ id: AccountID, _ reason: Reason) async throws -> Secret {
        let now = clock.now
        guard let account = try await repository.account(id) else {
            invalidate(id)
            throw OAuthError.unknownAccount(id)
        }
        guard account.status != .needsReauth else {
            invalidate(id)
            throw OAuthError.needsReauth(id)
        }
        let current = account.credentials
        // Another trigger, or another instance holding the lock before us, may have refreshed already.
        switch reason {
        case .expiring(let deadline):
            if !current.accessToken.isEmpty, current.expiresAt > (deadline ?? now.addingTimeInterval(buffer)) {
                remember(id, current)
                return current.accessToken
            }
        case .rejected(let token):
            if current.accessToken != token, !current.accessToken.isEmpty, current.expiresAt > now {
                remember(id, current)
                return current.accessToken
            }
        }
        guard !current.refreshToken.isEmpty else { throw OAuthError.noRefreshToken(id) }
        do {
            let tokens = try await client.refresh(refreshToken: current.refreshToken)
            return try await store(tokens, for: id)
        } catch let error as OAuthError {
            try await recordFailure(error, for: id)
            throw error
        }
    }

    private func store(_ tokens: OAuthTokens, for id: AccountID) async throws -> Secret {
        let issued = clock.now
        let updated = try await repository.update(id) { account in
            // A response without a refresh token keeps the old one; an empty token never replaces a good one.
            account.credentials = tokens.credentials(
                issuedAt: issued, previousRefreshToken: account.credentials.refreshToken)
            account.status = .active
            account.lastRefreshAt = issued
            account.lastRefreshError = nil
            if !tokens.scopes.isEmpty { account.scopes = tokens.scopes }
        }
        guard let updated else { throw OAuthError.unknownAccount(id) }
        remember(id, updated.credentials)
        observer?.accountDidChange(updated)
        onRefresh?(.success)
        logger.info(
            "refreshed",
            metadata: [
                "account": "\(id)", "expires_at": "\(updated.credentials.expiresAt)",
                "rotated": "\(tokens.refreshToken != nil)",
            ])
        return updated.credentials.accessToken
    }

    private func recordFailure(_ error: OAuthError, for id: AccountID) async throws {
        let now = clock.now
        let message = error.description
        let invalidGrant: Bool
        if case .invalidGrant = error { invalidGrant = true } else { invalidGrant = false }
        let updated = try await repository.update(id) { account in
            account.lastRefreshError = message
            if invalidGrant {
                account.status = .needsReauth
            } else if account.credentials.expiresAt <= now {
                // Tokens are kept either way; an expired one just cannot serve requests until a refresh succeeds.
                account.status = .inactive
            }
        }
        if invalidGrant { invalidate(id) }
        if let updated { observer?.accountDidChange(updated) }
        onRefresh?(invalidGrant ? .invalidGrant : .failure)
        logger.warning(
            "refresh failed", metadata: ["account": "\(id)", "error": "\(message)", "needs_reauth": "\(invalidGrant)"])
    }

    private nonisolated func remember(_ id: AccountID, _ credentials: Credentials) {
        cache.withLock { $0[id] = CachedToken(token: credentials.accessToken, expiresAt: credentials.expiresAt) }
    }
}

/// How a call to the token endpoint for a refresh ended.
public enum RefreshResult: String, Sendable, CaseIterable {
    case success
    /// Transient or other failure; the old tokens are kept.
    case failure
    /// The refresh token was rejected: the account needs a new login.
    case invalidGrant = "invalid_grant"
}
