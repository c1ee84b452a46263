import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Collects usage per account in memory and writes it to the account files at most every `interval` (and once
/// more at shutdown), so the hot path never waits for a disk write.
public actor UsageRecorder: Service {
    private let repository: any AccountRepository
    private let interval: Duration
    private let logger: Logger
    // Mutex, not actor state: `record` runs at the end of every response and must not need a hop or a task.
    private let pending = Mutex<[AccountID: (usage: Usage, lastUsed: Date)]>([:])

    public init(repository: any AccountRepository, interval: Duration = .seconds(5), logger: Logger) {
        self.repository = repository
        self.interval = interval
        self.logger = logger
    }

    public nonisolated func record(_ usage: Usage, for account: AccountID, at now: Date = Date()) {
        pending.withLock { pending in
            var entry = pending[account] ?? (Usage(), now)
            entry.usage.add(usage)
            entry.lastUsed = now
            pending[account] = entry
        }
    }

    /// Writes what was collected since the last flush.
    public func flush() async {
        let batch = pending.withLock { pending in
            defer { pending = [:] }
            return pending
        }
        for (account, entry) in batch {
            do {
                try await repository.update(account) { stored in
                    stored.usage.add(entry.usage)
                    stored.lastUsedAt = entry.lastUsed
                }
            } catch {
                logger.error("usage not saved", metadata: ["account": "\(account)", "error": "\(error)"])
            }
        }
    }

    public func run() async throws {
        let interval = interval
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                await self.flush()
            }
        }
        await flush()  // what the last responses recorded
    }
}
