import Foundation

/// Mutual exclusion for refreshing one account's tokens: refresh tokens are single use, so two refreshes in
/// flight for one account (in this process or, with a database-backed lock, in another instance) can lose it.
public protocol RefreshLock: Sendable {
    /// Waits until no one holds the lock for `account`, then holds it until the lease is released.
    /// Throws `CancellationError` if the task is cancelled while waiting.
    func acquire(_ account: AccountID) async throws -> RefreshLease
}

/// Proof of holding a ``RefreshLock``; `release()` must be called exactly once (later calls do nothing).
public struct RefreshLease: Sendable {
    private let releaseAction: @Sendable () async -> Void

    public init(release: @escaping @Sendable () async -> Void) { releaseAction = release }

    public func release() async { await releaseAction() }
}

extension RefreshLock {
    /// Runs `body` while holding the lock for `account`, releasing it however `body` ends.
    public func withLock<T: Sendable>(
        _ account: AccountID,
        isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async throws -> T {
        let lease = try await acquire(account)
        do {
            let value = try await body()
            await lease.release()
            return value
        } catch {
            await lease.release()
            throw error
        }
    }
}

/// A ``RefreshLock`` for one process: per account, a holder flag and a FIFO queue of waiters.
public actor InProcessRefreshLock: RefreshLock {
    private struct Waiter {
        let ticket: UInt64
        let continuation: CheckedContinuation<Void, any Error>
    }

    private var held: Set<AccountID> = []
    private var waiters: [AccountID: [Waiter]] = [:]
    /// Tickets cancelled before their waiter was queued.
    private var cancelledTickets: Set<UInt64> = []
    private var nextTicket: UInt64 = 0
    private var grantedTickets: Set<UInt64> = []

    public init() {}

    public func acquire(_ account: AccountID) async throws -> RefreshLease {
        try Task.checkCancellation()
        let ticket = nextTicket
        nextTicket += 1
        if held.contains(account) {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    if cancelledTickets.remove(ticket) != nil {
                        continuation.resume(throwing: CancellationError())
                    } else {
                        waiters[account, default: []].append(Waiter(ticket: ticket, continuation: continuation))
                    }
                }
            } onCancel: {
                Task { await self.cancel(ticket, account: account) }
            }
            // Ownership was handed over by `release` without clearing `held`; a cancellation that arrived after
            // the hand-over left a stale ticket behind.
            cancelledTickets.remove(ticket)
        } else {
            held.insert(account)
        }
        grantedTickets.insert(ticket)
        return RefreshLease { await self.release(account, ticket: ticket) }
    }

    /// Whether someone holds the lock for `account` (for tests and metrics).
    public func isHeld(_ account: AccountID) -> Bool { held.contains(account) }

    private func release(_ account: AccountID, ticket: UInt64) {
        guard grantedTickets.remove(ticket) != nil else { return }
        if var queue = waiters[account], !queue.isEmpty {
            let next = queue.removeFirst()
            waiters[account] = queue.isEmpty ? nil : queue
            next.continuation.resume()
        } else {
            held.remove(account)
        }
    }

    private func cancel(_ ticket: UInt64, account: AccountID) {
        guard var queue = waiters[account], let index = queue.firstIndex(where: { $0.ticket == ticket }) else {
            // Not queued yet (the continuation body has not run) or already granted.
            if !grantedTickets.contains(ticket) { cancelledTickets.insert(ticket) }
            return
        }
        let waiter = queue.remove(at: index)
        waiters[account] = queue.isEmpty ? nil : queue
        waiter.continuation.resume(throwing: CancellationError())
    }
}
