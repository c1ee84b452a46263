import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Collects usage per account and per client key, and rate-limit changes, in memory; writes them to the account
/// files (and the client-key ledger) at most every `interval` and once more at shutdown, so the hot path never
/// waits for a disk write.
public actor UsageRecorder: Service {
    public typealias AccountEntry = (usage: Usage, lastUsed: Date)

    private struct Pending {
        var accounts: [AccountID: AccountEntry] = [:]
        var rateLimits: [AccountID: RateLimitState] = [:]
        var clientKeysChanged = false
    }

    private let repository: any AccountRepository
    private let ledger: ClientUsageLedger?
    private let interval: Duration
    private let logger: Logger
    private struct State {
        var pending = Pending()
        /// Totals per client key label since the ledger was first written (small: one entry per configured key).
        var clientTotals: [String: Usage]
    }

    // Mutex, not actor state: `record` runs at the end of every response and must not need a hop or a task.
    private let state: Mutex<State>

    public init(
        repository: any AccountRepository, ledger: ClientUsageLedger? = nil, interval: Duration = .seconds(5),
        logger: Logger
    ) {
        self.repository = repository
        self.interval = interval
        self.logger = logger
        // An unreadable ledger is left as it is (and not written over) until an operator looks at it.
        let loaded = ledger?.load(logger: logger)
        self.ledger = loaded == nil ? nil : ledger
        self.state = Mutex(State(clientTotals: loaded ?? [:]))
    }

    /// Counts one response for `account` and, when known, the client key that sent it (its label).
    public nonisolated func record(
        _ usage: Usage, for account: AccountID, clientKey: String? = nil, at now: Date = Date()
    ) {
        func add(to entry: inout AccountEntry) {
            entry.usage.add(usage)
            entry.lastUsed = now
        }
        state.withLock { state in
            // In place: one lookup each, nothing copied out and back.
            add(to: &state.pending.accounts[account, default: (Usage(), now)])
            guard let clientKey else { return }
            state.pending.clientKeysChanged = true
            state.clientTotals[clientKey, default: Usage()].add(usage)
        }
    }

    /// A cooldown (or its end) to keep across restarts.
    public nonisolated func record(rateLimit: RateLimitState, for account: AccountID) {
        state.withLock { $0.pending.rateLimits[account] = rateLimit }
    }

    /// Usage counted since the last save, per account (the admin API adds it to the stored counters).
    public nonisolated var pendingUsage: [AccountID: AccountEntry] { state.withLock { $0.pending.accounts } }

    /// Totals per client key label.
    public nonisolated var clientKeyUsage: [String: Usage] { state.withLock { $0.clientTotals } }

    /// Writes what was collected since the last flush.
    public func flush() async {
        let batch = state.withLock { state in
            defer { state.pending = Pending() }
            return state.pending
        }
        for account in Set(batch.accounts.keys).union(batch.rateLimits.keys) {
            let used = batch.accounts[account]
            let rateLimit = batch.rateLimits[account]
            do {
                try await repository.update(account) { stored in
                    if let used {
                        stored.usage.add(used.usage)
                        stored.lastUsedAt = used.lastUsed
                    }
                    if let rateLimit { stored.rateLimit = rateLimit }
                }
            } catch {
                logger.error("usage not saved", metadata: ["account": "\(account)", "error": "\(error)"])
            }
        }
        if batch.clientKeysChanged, let ledger {
            ledger.save(clientKeyUsage, logger: logger)
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

/// Usage per client key, kept in `client_usage.json` in the data folder (labels and counters only, no keys).
public struct ClientUsageLedger: Sendable {
    public static let fileName = "client_usage.json"
    let folder: DataFolder

    public init(folder: DataFolder) { self.folder = folder }

    /// The saved totals; `nil` when the file exists but cannot be read.
    func load(logger: Logger) -> [String: Usage]? {
        guard folder.exists(Self.fileName) else { return [:] }
        do {
            return try JSONDecoder().decode([String: Usage].self, from: Data(try folder.read(Self.fileName)))
        } catch {
            logger.error(
                "client usage file unreadable; left untouched, client usage not saved",
                metadata: ["file": "\(Self.fileName)"])
            return nil
        }
    }

    func save(_ totals: [String: Usage], logger: Logger) {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try folder.writeAtomically(Array(try encoder.encode(totals)), to: Self.fileName)
        } catch {
            logger.error("client usage not saved", metadata: ["error": "\(error)"])
        }
    }
}
