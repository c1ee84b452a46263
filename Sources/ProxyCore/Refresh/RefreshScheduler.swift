import Foundation
import Logging
import ServiceLifecycle

/// What one scheduled run did (for logs, metrics and tests).
public struct RefreshRunReport: Sendable, Equatable {
    public var scheduledAt: Date
    /// Accounts whose token expired before this deadline were due.
    public var deadline: Date
    public var refreshed: [AccountID] = []
    /// Secret-free failure descriptions (also recorded on the accounts by the refresher).
    public var failed: [AccountID: String] = [:]
    /// Set when the account list itself could not be read.
    public var listingError: String?
}

/// Refreshes, on a schedule (`refresh.schedule`, hourly at minute 0 by default), every account whose token expires
/// before the next run plus `buffer`, so requests rarely wait on a refresh. A few accounts at a time, each after a
/// random bounded delay so several instances or many accounts do not hit the token endpoint together. A failure is
/// recorded and logged; the loop goes on until graceful shutdown.
public struct RefreshScheduler: Service {
    private let refresher: TokenRefresher
    private let repository: any AccountRepository
    private let clock: any ProxyClock
    private let schedule: RefreshSchedule
    private let buffer: TimeInterval
    private let concurrency: Int
    private let maxJitter: TimeInterval
    private let logger: Logger
    private let onRun: (@Sendable (RefreshRunReport) -> Void)?

    public init(
        refresher: TokenRefresher, repository: any AccountRepository, clock: any ProxyClock,
        schedule: RefreshSchedule = .hourly, buffer: TimeInterval = 60, concurrency: Int = 4,
        maxJitter: TimeInterval = 30, logger: Logger = Logger(label: "claude-proxy.refresh-scheduler"),
        onRun: (@Sendable (RefreshRunReport) -> Void)? = nil
    ) {
        self.refresher = refresher
        self.repository = repository
        self.clock = clock
        self.schedule = schedule
        self.buffer = buffer
        self.concurrency = max(1, concurrency)
        self.maxJitter = max(0, maxJitter)
        self.logger = logger
        self.onRun = onRun
    }

    public func run() async throws {
        logger.info("refresh scheduler started", metadata: ["schedule": "\(schedule)"])
        await cancelWhenGracefulShutdown { await self.loop() }
        logger.info("refresh scheduler stopped")
    }

    private func loop() async {
        var lastRun: Date?
        while !Task.isCancelled {
            // Never the same slot twice: the clock may read a little behind the time the last sleep ended at.
            let now = clock.now
            let runAt = schedule.nextRun(after: lastRun.map { max($0, now) } ?? now)
            lastRun = runAt
            do {
                try await clock.sleep(until: runAt)
            } catch {
                return
            }
            let report = await runOnce(scheduledAt: runAt)
            onRun?(report)
        }
    }

    /// One run as if scheduled at `scheduledAt`: refreshes accounts expiring before the following run + buffer.
    public func runOnce(scheduledAt: Date) async -> RefreshRunReport {
        let deadline = schedule.nextRun(after: scheduledAt).addingTimeInterval(buffer)
        var report = RefreshRunReport(scheduledAt: scheduledAt, deadline: deadline)
        let due: [AccountID]
        do {
            due = try await repository.all()
                .filter { $0.status != .needsReauth && $0.credentials.expiresAt < deadline }
                .map(\.id)
        } catch {
            report.listingError = String(describing: error)
            logger.error("refresh run cannot list accounts", metadata: ["error": "\(error)"])
            return report
        }
        await withTaskGroup(of: (AccountID, String?).self) { group in
            var running = 0
            for id in due {
                if running == concurrency, let result = await group.next() {
                    record(result, in: &report)
                    running -= 1
                }
                let startAt = scheduledAt.addingTimeInterval(maxJitter > 0 ? Double.random(in: 0...maxJitter) : 0)
                group.addTask { await refreshOne(id, startAt: startAt, deadline: deadline) }
                running += 1
            }
            for await result in group { record(result, in: &report) }
        }
        logger.info(
            "refresh run finished",
            metadata: [
                "due": "\(due.count)", "refreshed": "\(report.refreshed.count)", "failed": "\(report.failed.count)",
            ])
        return report
    }

    private func refreshOne(_ id: AccountID, startAt: Date, deadline: Date) async -> (AccountID, String?) {
        do {
            try await clock.sleep(until: startAt)
            try await refresher.refresh(for: id, ifExpiringBefore: deadline)
            return (id, nil)
        } catch is CancellationError {
            return (id, "cancelled by shutdown")
        } catch {
            return (id, String(describing: error))
        }
    }

    private func record(_ result: (AccountID, String?), in report: inout RefreshRunReport) {
        if let failure = result.1 {
            report.failed[result.0] = failure
        } else {
            report.refreshed.append(result.0)
        }
    }
}
