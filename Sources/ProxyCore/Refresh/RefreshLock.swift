/// Serialises refreshes of one account. Refresh tokens are single use: two refreshes of the same account racing
/// anywhere make one fail with `invalid_grant` and can kill the account (ANTHROPIC-WIRE.md). The refresher's
/// in-flight table covers one process; a database-backed implementation (advisory lock) covers several instances.
public protocol RefreshLock: Sendable {
    func withLock<T: Sendable>(for id: AccountID, _ body: @Sendable () async throws -> T) async throws -> T
}

/// A per-account async mutex inside one process; give one instance to every `TokenRefresher` that shares a
/// repository. Waiters are served in arrival order.
public actor InProcessRefreshLock: RefreshLock {
    private var held: Set<AccountID> = []
    private var waiters: [AccountID: [CheckedContinuation<Void, Never>]] = [:]

    public init() {}

    public func withLock<T: Sendable>(for id: AccountID, _ body: @Sendable () async throws -> T) async throws -> T {
        await acquire(id)
        defer { release(id) }
        return try await body()
    }

    private func acquire(_ id: AccountID) async {
        guard held.contains(id) else {
            held.insert(id)
            return
        }
        // Ownership passes directly from the releaser to the first waiter, so no newcomer can slip in between.
        await withCheckedContinuation { waiters[id, default: []].append($0) }
    }

    private func release(_ id: AccountID) {
        if var queue = waiters[id], !queue.isEmpty {
            let next = queue.removeFirst()
            waiters[id] = queue.isEmpty ? nil : queue
            next.resume()
        } else {
            held.remove(id)
        }
    }
}
